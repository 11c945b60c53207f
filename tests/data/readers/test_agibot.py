"""AgiBot World in its raw layout: head-camera mp4 and task_info text per episode."""

from __future__ import annotations

import json

import pytest

from any4d.data.readers.agibot import AgiBotWorld
from tests.data.readers.fixtures import assert_rgb_matches, rgb_uint8, truth, write_video


def write_agibot(root):
    scene = truth(7)
    write_video(
        root / "observations" / "327" / "648642" / "videos" / "head_color.mp4",
        rgb_uint8(scene),
        fps=30,
    )
    entries = [
        {"episode_id": 1, "task_name": "Other", "init_scene_text": "x", "label_info": {}},
        {
            "episode_id": 648642,
            "task_name": "Clear the table",
            "init_scene_text": "A cup stands on a table.",
            "label_info": {
                "action_config": [
                    {"start_frame": 0, "end_frame": 2, "action_text": "Pick up the cup."},
                    {"start_frame": 3, "end_frame": 4, "action_text": "Place it in the bin."},
                ]
            },
        },
    ]
    (root / "task_info").mkdir()
    (root / "task_info" / "task_327.json").write_text(json.dumps(entries))
    return scene


def test_agibot_reads_head_video_and_episode_text(tmp_path):
    scene = write_agibot(tmp_path)
    reader = AgiBotWorld(tmp_path)
    assert reader.modalities == ("rgb", "text")
    clip = reader.read_clip("327/648642", 0, 5)
    assert_rgb_matches(clip, scene, tol=0.02)
    assert clip.cameras is None and clip.fps == 30.0
    assert clip.text.startswith("Clear the table. A cup stands on a table.")


def test_agibot_clip_text_names_the_actions_it_overlaps(tmp_path):
    write_agibot(tmp_path)
    reader = AgiBotWorld(tmp_path)
    assert reader.read_clip("327/648642", 3, 2).text.endswith("table. Place it in the bin.")
    both = reader.read_clip("327/648642", 1, 3).text
    assert "Pick up the cup." in both and "Place it in the bin." in both


def test_agibot_episode_missing_from_task_info_names_the_file(tmp_path):
    write_agibot(tmp_path)
    (tmp_path / "task_info" / "task_327.json").write_text("[]")
    with pytest.raises(ValueError, match="task_327.json: has no entry for episode 648642"):
        AgiBotWorld(tmp_path).sequences()


def test_agibot_missing_video_names_the_camera_file(tmp_path):
    write_agibot(tmp_path)
    with pytest.raises(FileNotFoundError, match="hand_left_color.mp4 does not exist"):
        AgiBotWorld(tmp_path, camera="hand_left").sequences()
