"""The mixture config: the shipped paper YAML, strict keys, and building weighted datasets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from any4d.data.mixture import (
    ClipConfig,
    DatasetConfig,
    MixtureConfig,
    build_dataset,
    build_mixture,
    load_mixture,
)
from tests.data.readers.test_base import two_scene_root
from tests.data.readers.test_sevenscenes import seven_scenes_truth, write_seven_scenes

PAPER = Path(__file__).resolve().parents[2] / "configs" / "mixture" / "paper.yaml"

TABLE_1 = {  # data set → modalities (paper Table 1; pose = cameras, prompts/captions = text)
    "re10k": ("rgb", "cameras", "text"),
    "dl3dv": ("rgb", "depth", "cameras", "text"),
    "spatialvid": ("rgb", "cameras", "text"),
    "scannetpp": ("rgb", "depth", "cameras"),
    "agibot": ("rgb", "text"),
    "omniworld": ("rgb", "depth", "cameras"),
    "vkitti2": ("rgb", "depth", "cameras"),
    "pointodyssey": ("rgb", "depth", "cameras"),
    "7scenes": ("rgb", "depth", "cameras"),
}


def test_paper_mixture_lists_table_1_with_its_modalities():
    config = load_mixture(PAPER)
    assert {d.name: d.modalities for d in config.datasets} == TABLE_1
    assert [d.name for d in config.role("eval")] == ["7scenes"]
    assert (config.clip.height, config.clip.width) == (240, 320)
    assert (config.clip.length - 1) % 4 == 0


def test_unknown_keys_are_errors_naming_the_place(tmp_path):
    path = tmp_path / "mix.yaml"
    path.write_text("datasets:\n  - {name: a, reader: vkitti2, root: x, wieght: 2}\n")
    with pytest.raises(ValueError, match=r"datasets\[0\]: unknown key\(s\) \['wieght'\]"):
        load_mixture(path)
    path.write_text("datasets: []\nclips: {}\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['clips'\]"):
        load_mixture(path)


def test_bad_values_are_errors_naming_the_dataset():
    with pytest.raises(ValueError, match="reader is 'kitti'"):
        DatasetConfig(name="a", reader="kitti", root="x")
    with pytest.raises(ValueError, match="dataset 'a': modalities"):
        DatasetConfig(name="a", reader="vkitti2", root="x", modalities=["rgb", "pose"])
    with pytest.raises(ValueError, match="length is 50"):
        ClipConfig(length=50)
    entry = DatasetConfig(name="a", reader="vkitti2", root="x")
    with pytest.raises(ValueError, match=r"\['a'\] appear twice"):
        MixtureConfig((entry, entry))


def test_build_dataset_refuses_modalities_the_reader_lacks(tmp_path):
    write_seven_scenes(tmp_path, seven_scenes_truth())
    entry = DatasetConfig(
        name="7s", reader="7scenes", root=str(tmp_path), modalities=["rgb", "text"]
    )
    with pytest.raises(ValueError, match=r"dataset '7s' lists \['text'\]"):
        build_dataset(entry, ClipConfig(length=5, height=16, width=16))


def test_build_mixture_weights_each_dataset_by_its_weight(tmp_path):
    vkitti = two_scene_root(tmp_path / "vkitti")  # 4 sequences of 5 frames
    write_seven_scenes(tmp_path / "7s", seven_scenes_truth())  # 1 sequence
    config = MixtureConfig(
        (
            DatasetConfig("vk", "vkitti2", str(vkitti), weight=3.0, modalities=["rgb", "depth"]),
            DatasetConfig("7s", "7scenes", str(tmp_path / "7s"), weight=1.0),
        ),
        ClipConfig(length=5, height=16, width=16),
    )
    data, weights = build_mixture(config)
    assert len(data) == 5 and weights.shape == (5,)
    assert torch.isclose(weights[:4].sum(), torch.tensor(3.0, dtype=torch.float64))
    assert data[4].rgb.shape == (5, 3, 16, 16)
