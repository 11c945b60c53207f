"""``Scene``: one clip of a 4D scene — RGB video with optional depth, cameras and text.

Conventions (DESIGN §1): RGB ``(T, 3, H, W)`` float in ``[-1, 1]``; depth ``(T, 1, H, W)``
metric (metres), ``0`` = invalid; cameras OpenCV axes, camera-to-world, batch shape ``(T,)``,
intrinsics for the ``H × W`` grid. Scenes are saved as one safetensors file whose metadata
holds the non-tensor fields as JSON (no pickle anywhere).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import Tensor

from any4d.geometry.cameras import Cameras
from any4d.io import atomic_path

MODALITIES = ("rgb", "depth", "cameras", "text")
_FORMAT = "any4d.scene"
_FORMAT_VERSION = 1
# RGB values are allowed this far outside [-1, 1] (resampling overshoot) before it is an error.
_RGB_SLACK = 1e-3


@dataclass(frozen=True, eq=False)
class Scene:
    """A clip: what was observed of one 4D scene.

    rgb:     (T, 3, H, W) float in [-1, 1].
    depth:   (T, 1, H, W) metres along the optical axis (z-depth), 0 where invalid; or None.
    cameras: ``Cameras`` with batch shape (T,), intrinsics for the H × W grid; or None.
    text:    caption / prompt; or None.
    fps:     frames per second of the clip as sampled (after any frame stride).

    Construction validates every field and raises ``ValueError`` naming it.
    """

    rgb: Tensor
    depth: Tensor | None = None
    cameras: Cameras | None = None
    text: str | None = None
    fps: float = 10.0

    def __post_init__(self) -> None:
        self._validate()

    # ------------------------------------------------------------------ validation

    def _validate(self) -> None:
        rgb = self.rgb
        if not isinstance(rgb, Tensor) or not rgb.is_floating_point():
            raise ValueError(
                f"rgb must be a floating-point tensor (T, 3, H, W), got {_describe(rgb)}"
            )
        if rgb.dim() != 4 or rgb.shape[1] != 3:
            raise ValueError(f"rgb has shape {tuple(rgb.shape)} (expected (T, 3, H, W))")
        if min(rgb.shape) == 0:
            raise ValueError(f"rgb has shape {tuple(rgb.shape)} (expected T, H, W ≥ 1)")
        if not torch.isfinite(rgb).all():
            raise ValueError("rgb contains NaN or inf (expected finite values in [-1, 1])")
        lo, hi = float(rgb.min()), float(rgb.max())
        if lo < -1 - _RGB_SLACK or hi > 1 + _RGB_SLACK:
            raise ValueError(f"rgb spans [{lo:.4g}, {hi:.4g}] (expected values in [-1, 1])")
        t, _, h, w = rgb.shape

        if self.depth is not None:
            depth = self.depth
            if not isinstance(depth, Tensor) or not depth.is_floating_point():
                raise ValueError(
                    f"depth must be a floating-point tensor (T, 1, H, W), got {_describe(depth)}"
                )
            if depth.shape != (t, 1, h, w):
                raise ValueError(
                    f"depth has shape {tuple(depth.shape)} but rgb has {tuple(rgb.shape)} "
                    f"(expected ({t}, 1, {h}, {w}))"
                )
            if depth.device != rgb.device:
                raise ValueError(f"depth is on {depth.device} but rgb on {rgb.device}")
            check_depth_values(depth)

        if self.cameras is not None:
            cameras = self.cameras
            if not isinstance(cameras, Cameras):
                raise ValueError(f"cameras must be a Cameras, got {type(cameras).__name__}")
            if tuple(cameras.shape) != (t,):
                raise ValueError(
                    f"cameras has batch shape {tuple(cameras.shape)} but rgb has {t} frames "
                    f"(expected ({t},))"
                )
            if cameras.device != rgb.device:
                raise ValueError(f"cameras are on {cameras.device} but rgb on {rgb.device}")
            try:
                cameras.validate()  # Cameras.unchecked may have skipped it
            except ValueError as error:
                raise ValueError(f"cameras: {error}") from None

        if self.text is not None and not isinstance(self.text, str):
            raise ValueError(f"text must be a str or None, got {type(self.text).__name__}")
        fps_is_number = isinstance(self.fps, (int, float)) and not isinstance(self.fps, bool)
        if not fps_is_number or not (0 < float(self.fps) < float("inf")):
            raise ValueError(f"fps is {self.fps!r} (expected a positive finite number)")

    # ------------------------------------------------------------------ properties

    @property
    def num_frames(self) -> int:
        return self.rgb.shape[0]

    @property
    def height(self) -> int:
        return self.rgb.shape[2]

    @property
    def width(self) -> int:
        return self.rgb.shape[3]

    @property
    def modalities(self) -> tuple[str, ...]:
        """Names of the modalities this clip provides, in ``MODALITIES`` order."""
        present = {
            "rgb": True,
            "depth": self.depth is not None,
            "cameras": self.cameras is not None,
            "text": self.text is not None,
        }
        return tuple(name for name in MODALITIES if present[name])

    def has(self, modality: str) -> bool:
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r} (expected one of {MODALITIES})")
        return modality in self.modalities

    # ------------------------------------------------------------------ transforms

    def to(self, device=None, dtype: torch.dtype | None = None) -> Scene:
        """Move tensors to ``device`` and cast floating tensors to ``dtype``."""
        return replace(
            self,
            rgb=self.rgb.to(device=device, dtype=dtype),
            depth=None if self.depth is None else self.depth.to(device=device, dtype=dtype),
            cameras=None if self.cameras is None else self.cameras.to(device=device, dtype=dtype),
        )

    def frames(self, index: slice | Tensor | list[int]) -> Scene:
        """The sub-clip of the given frames (a slice, list or index tensor). ``fps`` is kept."""
        if isinstance(index, list):
            index = torch.as_tensor(index, dtype=torch.long)
        return replace(
            self,
            rgb=self.rgb[index],
            depth=None if self.depth is None else self.depth[index],
            cameras=None if self.cameras is None else self.cameras[index],
        )

    # ------------------------------------------------------------------ serialisation

    def save(self, path: str | os.PathLike) -> Path:
        """Write the scene losslessly to one ``.safetensors`` file, atomically.

        Tensors keep their dtype; ``text`` and ``fps`` live in the file's JSON metadata.
        """
        path = Path(path)
        tensors = {"rgb": self.rgb}
        if self.depth is not None:
            tensors["depth"] = self.depth
        if self.cameras is not None:
            tensors["K"], tensors["c2w"] = self.cameras.K, self.cameras.c2w
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        info = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "fps": float(self.fps),
            "text": self.text,
        }
        # A crash never leaves a half-written scene; the file gets the umask's permissions.
        with atomic_path(path) as temporary:
            temporary.write_bytes(save(tensors, metadata={"any4d": json.dumps(info)}))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device=None) -> Scene:
        """Read a scene written by ``Scene.save`` (validated like any new scene)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"scene file {path} does not exist")
        try:
            with safe_open(str(path), framework="pt", device=str(device or "cpu")) as handle:
                metadata = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except (SafetensorError, OSError, ValueError) as error:
            raise ValueError(f"{path} is not a readable safetensors file: {error}") from None
        if "any4d" not in metadata:
            raise ValueError(
                f"{path} has no any4d scene metadata (expected a file from Scene.save)"
            )
        try:
            info = json.loads(metadata["any4d"])
        except json.JSONDecodeError:
            info = None
        if not isinstance(info, dict):
            raise ValueError(f"{path} has malformed any4d metadata (expected a JSON object)")
        if info.get("format") != _FORMAT or info.get("version") != _FORMAT_VERSION:
            raise ValueError(
                f"{path} holds format {info.get('format')!r} version {info.get('version')!r} "
                f"(expected {_FORMAT!r} version {_FORMAT_VERSION})"
            )
        missing = {"fps", "text"} - info.keys()
        if missing:
            raise ValueError(f"{path} metadata lacks {sorted(missing)} (expected fps and text)")
        unexpected = tensors.keys() - {"rgb", "depth", "K", "c2w"}
        if unexpected:
            raise ValueError(
                f"{path} holds unexpected tensors {sorted(unexpected)} "
                "(expected rgb and optionally depth, K + c2w)"
            )
        if "rgb" not in tensors or ("K" in tensors) != ("c2w" in tensors):
            raise ValueError(f"{path} lacks rgb or has only one of K / c2w")
        cameras = Cameras(tensors["K"], tensors["c2w"]) if "K" in tensors else None
        return cls(
            rgb=tensors["rgb"],
            depth=tensors.get("depth"),
            cameras=cameras,
            text=info["text"],
            fps=info["fps"],
        )

    def __repr__(self) -> str:
        t, _, h, w = self.rgb.shape
        return (
            f"Scene(frames={t}, size={h}x{w}, modalities={self.modalities}, "
            f"fps={self.fps:g}, dtype={self.rgb.dtype})"
        )


def check_depth_values(depth: Tensor | np.ndarray) -> None:
    """Raise unless ``depth`` (a tensor or an array of any shape) holds finite metres ≥ 0, with
    0 = invalid (DESIGN §1)."""
    finite = torch.isfinite(depth) if isinstance(depth, Tensor) else np.isfinite(depth)
    if not finite.all():
        raise ValueError("depth contains NaN or inf (expected finite metres, 0 = invalid)")
    if (depth < 0).any():
        raise ValueError(
            f"depth has negative values (min {float(depth.min()):.4g}); "
            "expected metres ≥ 0 with 0 = invalid"
        )


def _describe(value) -> str:
    if isinstance(value, Tensor):
        return f"tensor {tuple(value.shape)} {value.dtype}"
    return type(value).__name__
