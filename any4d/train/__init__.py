"""Training: configs, the data mixture, the diffusion-forcing step, DDP / FSDP2, checkpoints.

``any4d train --config tiny-synthetic`` (or ``torchrun --nproc_per_node N -m any4d train …``)
calls ``train(load_config(...))``. Deviation from DESIGN §7's single ``train.py``: the loop, its
config, data, checkpoints and distributed set-up are one job each, so they are modules here.
"""

from any4d.train.config import TrainConfig, load_config, named_configs
from any4d.train.loop import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "load_config", "named_configs", "train"]
