"""Helpers: tiny training runs in this process or in subprocesses (any4d train, torchrun)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# A run small enough for a test: 3-frame 16 × 16 clips, batch 4.
TINY = [
    "data.batch_size=4",
    "data.num_frames=3",
    "data.height=16",
    "data.width=16",
    "optim.warmup_steps=1",
]


def environment() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def train_command(output: Path, *overrides: str, processes: int = 1, resume: bool = False):
    """The command line of a tiny-synthetic run into ``output``."""
    torchrun = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    launcher = [sys.executable, *(torchrun if processes > 1 else []), "-m", "any4d"]
    flags = ["--no-progress", *(["--resume"] if resume else [])]
    train = ["train", "--config", "tiny-synthetic", *flags, f"output_dir={output}"]
    return [*launcher, *train, *TINY, *overrides]


def run(command, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command, capture_output=True, text=True, env=environment(), timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def losses(output: Path) -> dict[int, float]:
    """step → loss from a run's metrics file (a resumed run's later lines win)."""
    out = {}
    for line in (output / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        out[record["step"]] = record["loss"]
    return out
