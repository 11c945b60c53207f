"""AgiBot World (Alpha / Beta raw release): RGB (head camera) + task text.

Layout (HF card agibot-world/AgiBotWorld-Alpha; task-info keys as read by the LeRobot
conversion scripts — UNCONFIRMED against the official schema)::

    <root>/task_info/task_<task_id>.json        [{"episode_id", "task_name", "init_scene_text",
                                                  "label_info": {"action_config": [{"start_frame",
                                                  "end_frame", "action_text"}, …]}}, …]
    <root>/observations/<task_id>/<episode_id>/videos/head_color.mp4     640×480, 30 fps

One sequence per episode, named "<task_id>/<episode_id>". Text: "<task_name>. <init_scene_text>"
followed by the action texts of the segments a clip overlaps. Cameras and depth are not read:
the extrinsics' axis convention and the depth units are UNCONFIRMED (DATASETS.md).
"""

from __future__ import annotations

from pathlib import Path

from any4d.data.readers.base import Reader, Sequence, VideoFrames
from any4d.data.readers.decode import CorruptFileError, read_json, video_info


class AgiBotWorld(Reader):
    """AgiBot World episodes; ``camera``: the ``<camera>_color.mp4`` to read (default "head")."""

    name = "agibot"
    layout = "task_info/task_<id>.json, observations/<id>/<episode>/videos/head_color.mp4"
    provides = ("rgb", "text")

    def __init__(self, root: str | Path, *, camera: str = "head", **options) -> None:
        super().__init__(root, **options)
        self.camera = camera
        self._actions: dict[str, list[tuple[int, int, str]]] = {}

    def find_sequences(self) -> list[tuple[str, Path]]:
        episodes = sorted(p.parent for p in self.root.glob("observations/*/*/videos"))
        return [(f"{p.parent.name}/{p.name}", p) for p in episodes]

    def index_sequence(self, name: str, episode: Path) -> Sequence:
        task_id, episode_id = episode.parent.name, episode.name
        path = self.root / "task_info" / f"task_{task_id}.json"
        entries = read_json(path, "an AgiBot World task_info file")
        try:
            entry = next(e for e in entries if str(e["episode_id"]) == episode_id)
            text = f"{entry['task_name'].strip()}. {entry['init_scene_text'].strip()}"
            actions = [
                (int(a["start_frame"]), int(a["end_frame"]), str(a["action_text"]).strip())
                for a in entry.get("label_info", {}).get("action_config", [])
            ]
        except StopIteration:
            raise CorruptFileError(path, f"has no entry for episode {episode_id}") from None
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise CorruptFileError(
                path, f"lacks or mangles {error} for episode {episode_id}"
            ) from None
        video = episode / "videos" / f"{self.camera}_color.mp4"
        count, fps = video_info(video)
        self._actions[name] = actions
        return Sequence(
            name=name, source=path, rgb=VideoFrames(video, tuple(range(count))), text=text, fps=fps
        )

    def clip_text(self, sequence: Sequence, indices: list[int]) -> str | None:
        text = super().clip_text(sequence, indices)
        first, last = min(indices), max(indices)
        doing = [a for s, e, a in self._actions.get(sequence.name, []) if s <= last and e >= first]
        return f"{text} {' '.join(doing)}".strip() if doing and text else text
