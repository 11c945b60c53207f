"""Past one machine: ``torchrun --nnodes 2`` with one process per "node", rendezvous on
127.0.0.1, as a user launches it on two hosts — training, caching and evaluation each give what
one process gives."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import torch
from safetensors.torch import load_file

from tests.json_close import json_close
from tests.train.runs import TINY, environment, losses, run, train_command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(arguments: list[str], timeout: float = 300) -> list[str]:
    """Run ``python -m any4d <arguments>`` as two torchrun "nodes" of one process each (static
    rendezvous at 127.0.0.1: node 0 hosts it); returns each node's stdout."""
    port = _free_port()
    commands = [
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "2",
            "--nproc_per_node",
            "1",
            "--node_rank",
            str(node),
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            "-m",
            "any4d",
            *arguments,
        ]  # fmt: skip
        for node in range(2)
    ]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    nodes = [subprocess.Popen(c, env=environment(), **pipes) for c in commands]
    outputs = []
    try:
        for node, process in enumerate(nodes):
            out, err = process.communicate(timeout=timeout)
            assert process.returncode == 0, f"node {node}: {out[-2000:]}{err[-3000:]}"
            outputs.append(out)
    finally:
        for process in nodes:
            process.kill()
    return outputs


def test_training_on_two_nodes_equals_one_process(tmp_path):
    overrides = ["steps=3", "checkpoint_every=3", "strategy=fsdp"]
    run(train_command(tmp_path / "one", *overrides))
    two = train_command(tmp_path / "two", *overrides)
    two_nodes(two[two.index("train") :])
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert one.keys() == two.keys() == {1, 2, 3}
    assert all(abs(one[k] - two[k]) <= 1e-5 * abs(one[k]) for k in one)
    a = load_file(tmp_path / "one/checkpoints/step_000003/model/model.safetensors")
    b = load_file(tmp_path / "two/checkpoints/step_000003/model/model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-5


def test_a_cache_written_by_two_nodes_equals_one_written_by_one_process(tmp_path):
    arguments = [
        "cache", "--config", "tiny-synthetic", "--no-progress", "--shard-size", "2",
        *TINY, "data.synthetic=[{name: s, size: 5, modalities: [rgb, depth, cameras]}]",
    ]  # fmt: skip
    run([sys.executable, "-m", "any4d", *arguments, "--out", str(tmp_path / "one")])
    outputs = two_nodes([*arguments, "--out", str(tmp_path / "two")])
    assert "wrote" in outputs[0] and "wrote" not in outputs[1]  # rank 0 reports, once
    one, two = (json.loads((tmp_path / d / "index.json").read_text()) for d in ("one", "two"))
    assert one == two and len(one["shards"]) == 3  # shards 0 and 2 by node 0, 1 by node 1
    for shard in one["shards"]:
        a, b = (load_file(tmp_path / d / shard["file"]) for d in ("one", "two"))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluation_on_two_nodes_equals_one_process(tmp_path):
    from any4d.model import Any4DTransformer, preset
    from any4d.pipeline import Any4DPipeline
    from any4d.tokenize import PixelTokenizer

    torch.manual_seed(0)
    shape = {"num_frames": 3, "height": 16, "width": 16, "fps": 4.0}
    Any4DPipeline(Any4DTransformer(preset("tiny")), PixelTokenizer(2), shape).save_pretrained(
        tmp_path / "pipe"
    )
    arguments = ["eval", "--checkpoint", str(tmp_path / "pipe"), "--clips", "3", "--steps", "2"]
    run([sys.executable, "-m", "any4d", *arguments, "--out", str(tmp_path / "one")])
    outputs = two_nodes([*arguments, "--out", str(tmp_path / "two")])
    assert "| synthetic |" in outputs[0] and outputs[1] == ""  # one table, from rank 0
    one, two = (json.loads((tmp_path / d / "table.json").read_text()) for d in ("one", "two"))
    # Equal up to the last digits of float64 sums (BLAS may add in another order per process).
    assert json_close(one, two) and one["rows"]
    for name in ("heldout_0000", "heldout_0001", "heldout_0002"):
        a, b = (json.loads((tmp_path / d / f"clips/synthetic/{name}.json").read_text())
                for d in ("one", "two"))  # fmt: skip
        assert json_close(a, b)
