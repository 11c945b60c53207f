"""Pinhole cameras in any4d's one convention.

OpenCV axes (x right, y down, z forward), intrinsics ``K`` in pixels with pixel ``(u, v)``
sampled at ``(u + 0.5, v + 0.5)``, pose camera-to-world ``c2w``. A ``Cameras`` holds any number of
leading (batch) dimensions; for a clip the last batch dimension is time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


def _tolerance(dtype: torch.dtype) -> float:
    """Tolerance of the "is a rotation / is a pinhole K" checks for a dtype.

    Loose enough for round-off after chains of products and for data cast up from a lower
    precision (a float32 pose cast to float64 is orthonormal to ~1e-7 only), tight enough to
    catch a scaled, sheared or mirrored matrix.
    """
    if dtype in (torch.float16, torch.bfloat16):
        return 5e-2
    return 1e-3 if dtype == torch.float32 else 1e-6


def rigid_inverse(transform: Tensor) -> Tensor:
    """Inverse of rigid transforms ``[R | t]`` without a general matrix inverse.

    transform: (..., 4, 4). Returns (..., 4, 4): ``[Rᵀ | −Rᵀ t]``.
    """
    rotation = transform[..., :3, :3].transpose(-1, -2)
    translation = -(rotation @ transform[..., :3, 3:])
    out = torch.zeros_like(transform)
    out[..., :3, :3] = rotation
    out[..., :3, 3:] = translation
    out[..., 3, 3] = 1
    return out


def _first_bad(bad: Tensor) -> tuple[int, ...]:
    """Batch index of the first ``True`` in ``bad`` (a bool tensor of the batch shape)."""
    return tuple(int(i) for i in torch.nonzero(bad)[0]) if bad.dim() else ()


def check_rotations(rotation: Tensor, name: str, tolerance: float | None = None) -> None:
    """Raise if ``rotation`` (..., 3, 3) is not a proper rotation (orthonormal, det +1).

    tolerance: the most ``max |R Rᵀ − I|`` and ``|det R − 1|`` may be; default: by dtype
               (``_tolerance``), for matrices any4d computed itself.
    """
    tol = _tolerance(rotation.dtype) if tolerance is None else tolerance
    r = rotation.double()
    eye = torch.eye(3, dtype=r.dtype, device=r.device)
    ortho_err = (r @ r.transpose(-1, -2) - eye).abs().amax(dim=(-1, -2))
    det = torch.linalg.det(r)
    bad = (ortho_err > tol) | ((det - 1).abs() > tol)
    if bad.any():
        index = _first_bad(bad)
        raise ValueError(
            f"{name} at index {index} is not a proper rotation: |R Rᵀ − I| = "
            f"{float(ortho_err[index]):.2e}, det = {float(det[index]):.6f} "
            f"(expected an orthonormal matrix with det +1 within {tol:g})"
        )


# eq=False: fields are tensors, so a generated == would compare element-wise and fail.
@dataclass(frozen=True, eq=False)
class Cameras:
    """A batch of pinhole cameras.

    K:   (..., 3, 3) intrinsics in pixels, ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``.
    c2w: (..., 4, 4) camera-to-world pose, OpenCV axes; bottom row ``[0, 0, 0, 1]``.

    Both must share the same leading shape (``Cameras.shape``), device and floating dtype.
    Construction validates (which synchronises with the device); ``Cameras.unchecked`` skips
    it on hot paths whose inputs come from exact operations on valid cameras.
    """

    K: Tensor
    c2w: Tensor

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def unchecked(cls, K: Tensor, c2w: Tensor) -> Cameras:
        """Build without validation (inputs produced by our own exact operations)."""
        cameras = object.__new__(cls)
        object.__setattr__(cameras, "K", K)
        object.__setattr__(cameras, "c2w", c2w)
        return cameras

    @classmethod
    def from_intrinsics(
        cls,
        fx: Tensor | float,
        fy: Tensor | float,
        cx: Tensor | float,
        cy: Tensor | float,
        c2w: Tensor,
    ) -> Cameras:
        """Cameras from focal lengths and principal point (pixels, broadcast to ``c2w``'s batch)."""
        batch = c2w.shape[:-2]
        values = [torch.as_tensor(v, dtype=c2w.dtype, device=c2w.device) for v in (fx, fy, cx, cy)]
        fx, fy, cx, cy = (v.expand(batch) for v in values)
        K = torch.zeros(*batch, 3, 3, dtype=c2w.dtype, device=c2w.device)
        K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2] = fx, fy, cx, cy
        K[..., 2, 2] = 1
        return cls(K, c2w)

    # ------------------------------------------------------------------ validation

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field and the expected form on any bad input."""
        K, c2w = self.K, self.c2w
        if not isinstance(K, Tensor) or not isinstance(c2w, Tensor):
            raise TypeError(
                f"Cameras expects tensors, got K: {type(K).__name__}, c2w: {type(c2w).__name__}"
            )
        if K.shape[-2:] != (3, 3):
            raise ValueError(f"K has shape {tuple(K.shape)} (expected (..., 3, 3))")
        if c2w.shape[-2:] != (4, 4):
            raise ValueError(f"c2w has shape {tuple(c2w.shape)} (expected (..., 4, 4))")
        if K.shape[:-2] != c2w.shape[:-2]:
            raise ValueError(
                f"K has batch shape {tuple(K.shape[:-2])} but c2w has {tuple(c2w.shape[:-2])} "
                "(expected the same leading dimensions)"
            )
        if not K.is_floating_point() or K.dtype != c2w.dtype:
            raise ValueError(
                f"K is {K.dtype} and c2w is {c2w.dtype} (expected the same floating dtype)"
            )
        if K.device != c2w.device:
            raise ValueError(f"K is on {K.device} and c2w on {c2w.device} (expected one device)")
        for name, value in (("K", K), ("c2w", c2w)):
            if not torch.isfinite(value).all():
                raise ValueError(f"{name} contains NaN or inf (expected finite values)")
        if K.numel() == 0:
            return
        tol = _tolerance(K.dtype)
        bottom = K[..., 2, :] - torch.tensor([0.0, 0.0, 1.0], dtype=K.dtype, device=K.device)
        lower = torch.stack([K[..., 1, 0], bottom[..., 0], bottom[..., 1], bottom[..., 2]], -1)
        if (lower.abs() > tol).any():
            index = _first_bad((lower.abs() > tol).any(-1))
            raise ValueError(
                f"K at index {index} is {K[index].tolist()} (expected the form "
                "[[fx, s, cx], [0, fy, cy], [0, 0, 1]])"
            )
        focal = torch.stack([K[..., 0, 0], K[..., 1, 1]], -1)
        if (focal <= 0).any():
            raise ValueError(
                f"K has a focal length ≤ 0 (min {float(focal.min()):g}); expected fx, fy > 0 — "
                "a singular or mirrored intrinsic matrix"
            )
        row = c2w[..., 3, :] - torch.tensor(
            [0.0, 0.0, 0.0, 1.0], dtype=c2w.dtype, device=c2w.device
        )
        if (row.abs() > tol).any():
            index = _first_bad((row.abs() > tol).any(-1))
            raise ValueError(
                f"c2w at index {index} has bottom row {c2w[index][3].tolist()} "
                "(expected [0, 0, 0, 1], a rigid transform)"
            )
        check_rotations(c2w[..., :3, :3], "c2w rotation")

    # ------------------------------------------------------------------ container protocol

    @property
    def shape(self) -> torch.Size:
        """Leading (batch) shape, e.g. ``(T,)`` for one clip, ``(B, T)`` for a batch of clips."""
        return self.K.shape[:-2]

    @property
    def device(self) -> torch.device:
        return self.K.device

    @property
    def dtype(self) -> torch.dtype:
        return self.K.dtype

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a single camera (Cameras with an empty batch shape)")
        return self.shape[0]

    def __getitem__(self, index) -> Cameras:
        """Index the batch dimensions like a tensor: ``cams[0]``, ``cams[:, ::2]``, ``cams[m]``."""
        if not isinstance(index, tuple):
            index = (index,)
        if any(i is Ellipsis for i in index):
            raise IndexError("Cameras indexing does not support '...'; index batch dims explicitly")
        if len(index) > len(self.shape):
            raise IndexError(
                f"too many indices for Cameras with batch shape {tuple(self.shape)}: {len(index)}"
            )
        return Cameras.unchecked(self.K[index], self.c2w[index])

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Cameras:
        """Move to a device and/or cast to a floating dtype."""
        if dtype is not None and not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating type, got {dtype}")
        return Cameras.unchecked(
            self.K.to(device=device, dtype=dtype), self.c2w.to(device=device, dtype=dtype)
        )

    def reshape(self, *shape: int) -> Cameras:
        """Reshape the batch dimensions."""
        return Cameras.unchecked(self.K.reshape(*shape, 3, 3), self.c2w.reshape(*shape, 4, 4))

    @staticmethod
    def stack(cameras: Sequence[Cameras], dim: int = 0) -> Cameras:
        """Stack along a new batch dimension (``dim`` counts batch dims only)."""
        ndim = _check_joinable(cameras, "stack", same_shape=True)
        dim = _batch_dim(dim, ndim + 1, "stack")
        return Cameras.unchecked(
            torch.stack([c.K for c in cameras], dim), torch.stack([c.c2w for c in cameras], dim)
        )

    @staticmethod
    def cat(cameras: Sequence[Cameras], dim: int = 0) -> Cameras:
        """Concatenate along an existing batch dimension."""
        ndim = _check_joinable(cameras, "cat", same_shape=False)
        dim = _batch_dim(dim, ndim, "cat")
        others = [c.shape[:dim] + c.shape[dim + 1 :] for c in cameras]
        if any(shape != others[0] for shape in others):
            raise ValueError(
                f"Cameras.cat: batch shapes {[tuple(c.shape) for c in cameras]} differ outside "
                f"dim {dim} (expected equal sizes there)"
            )
        return Cameras.unchecked(
            torch.cat([c.K for c in cameras], dim), torch.cat([c.c2w for c in cameras], dim)
        )

    # ------------------------------------------------------------------ derived quantities

    @property
    def R(self) -> Tensor:
        """(..., 3, 3) camera-to-world rotation (columns: camera axes in world coordinates)."""
        return self.c2w[..., :3, :3]

    @property
    def centers(self) -> Tensor:
        """(..., 3) camera centres in world coordinates."""
        return self.c2w[..., :3, 3]

    @property
    def w2c(self) -> Tensor:
        """(..., 4, 4) world-to-camera transforms."""
        return rigid_inverse(self.c2w)

    @property
    def focal(self) -> Tensor:
        """(..., 2) focal lengths ``(fx, fy)`` in pixels."""
        return torch.stack([self.K[..., 0, 0], self.K[..., 1, 1]], -1)

    @property
    def principal_point(self) -> Tensor:
        """(..., 2) principal point ``(cx, cy)`` in pixels."""
        return self.K[..., :2, 2]

    @property
    def K_inv(self) -> Tensor:
        """(..., 3, 3) inverse intrinsics, in closed form (K is upper triangular).

        No LAPACK call, so it works for every dtype (half precision included) and device.
        """
        fx, s, cx = self.K[..., 0, 0], self.K[..., 0, 1], self.K[..., 0, 2]
        fy, cy = self.K[..., 1, 1], self.K[..., 1, 2]
        inv = torch.zeros_like(self.K)
        inv[..., 0, 0] = 1 / fx
        inv[..., 0, 1] = -s / (fx * fy)
        inv[..., 0, 2] = (s * cy - cx * fy) / (fx * fy)
        inv[..., 1, 1] = 1 / fy
        inv[..., 1, 2] = -cy / fy
        inv[..., 2, 2] = 1
        return inv

    # ------------------------------------------------------------------ transforms of the world

    def transform_world(self, transform: Tensor) -> Cameras:
        """Apply a rigid world transform: ``c2w' = transform @ c2w``.

        transform: (4, 4) or broadcastable to (..., 4, 4).
        """
        return Cameras.unchecked(self.K, transform @ self.c2w)

    def relative_to_first(self) -> Cameras:
        """Express every camera relative to the first one along the last batch dimension (time).

        Returns cameras whose ``c2w[..., 0, :, :]`` is the identity: ``c2w'_t = c2w_0⁻¹ c2w_t``.
        """
        if not self.shape:
            raise ValueError("relative_to_first needs a time dimension (batch shape (..., T))")
        reference = rigid_inverse(self.c2w[..., :1, :, :])
        return Cameras.unchecked(self.K, reference @ self.c2w)

    def scaled(self, scale: Tensor | float) -> Cameras:
        """Scale the world about its origin: camera centres multiplied by ``scale``.

        scale: positive scalar or tensor broadcastable to the batch shape, aligned from the right
        as in torch — per-clip scales ``(B,)`` of cameras ``(B, T)`` are passed as ``s[:, None]``.
        """
        scale = torch.as_tensor(scale, dtype=self.dtype, device=self.device)
        if (scale <= 0).any() or not torch.isfinite(scale).all():
            raise ValueError(f"scale must be positive and finite, got {scale}")
        c2w = self.c2w.clone()
        c2w[..., :3, 3] = c2w[..., :3, 3] * scale[..., None]
        return Cameras.unchecked(self.K, c2w)

    # ------------------------------------------------------------- transforms of the image grid

    def resized(self, scale_x: float | Tensor, scale_y: float | Tensor | None = None) -> Cameras:
        """Intrinsics for the image resized by ``(scale_x, scale_y)`` (new size / old size).

        With pixel centres at ``+0.5`` a continuous image coordinate scales exactly, so
        ``fx, s, cx`` scale by ``scale_x`` and ``fy, cy`` by ``scale_y``. Tensor factors broadcast
        against the batch shape aligned from the right, as in ``scaled``.
        """
        scale_y = scale_x if scale_y is None else scale_y
        sx = torch.as_tensor(scale_x, dtype=self.dtype, device=self.device)
        sy = torch.as_tensor(scale_y, dtype=self.dtype, device=self.device)
        if (sx <= 0).any() or (sy <= 0).any():
            raise ValueError(f"resize factors must be positive, got ({scale_x}, {scale_y})")
        K = self.K.clone()
        K[..., 0, :] = K[..., 0, :] * sx[..., None]
        K[..., 1, :] = K[..., 1, :] * sy[..., None]
        return Cameras.unchecked(K, self.c2w)

    def resized_to(self, old_hw: tuple[int, int], new_hw: tuple[int, int]) -> Cameras:
        """Intrinsics for an image resized from ``old_hw = (H, W)`` to ``new_hw``."""
        (h0, w0), (h1, w1) = old_hw, new_hw
        if min(h0, w0, h1, w1) <= 0:
            raise ValueError(f"image sizes must be positive, got {old_hw} -> {new_hw}")
        return self.resized(w1 / w0, h1 / h0)

    def cropped(self, top: float, left: float) -> Cameras:
        """Intrinsics for the crop whose top-left pixel corner is ``(left, top)`` of this image."""
        K = self.K.clone()
        K[..., 0, 2] = K[..., 0, 2] - left
        K[..., 1, 2] = K[..., 1, 2] - top
        return Cameras.unchecked(K, self.c2w)

    def strided(self, stride: int | tuple[int, int]) -> Cameras:
        """Intrinsics for the grid of ``stride × stride`` pixel blocks (pooling, a VAE, patches).

        stride: int or ``(stride_y, stride_x)``. Block ``(i, j)`` covers pixels
        ``[stride·j, stride·(j+1))``, so its centre is the continuous coordinate
        ``stride·(j + 0.5)`` — the same +0.5 convention on the coarse grid.
        """
        sy, sx = (stride, stride) if isinstance(stride, int) else stride
        if sy <= 0 or sx <= 0:
            raise ValueError(f"stride must be positive, got {stride}")
        return self.resized(1.0 / sx, 1.0 / sy)

    def __repr__(self) -> str:
        return f"Cameras(shape={tuple(self.shape)}, dtype={self.dtype}, device={self.device})"


def _check_joinable(cameras: Sequence[Cameras], op: str, same_shape: bool) -> int:
    """Number of batch dims shared by ``cameras``; raise unless dtype, device (and shape) agree."""
    if not cameras:
        raise ValueError(f"Cameras.{op} needs at least one Cameras")
    first = cameras[0]
    for other in cameras[1:]:
        if (other.dtype, other.device) != (first.dtype, first.device):
            raise ValueError(
                f"Cameras.{op}: {other.dtype} on {other.device} vs {first.dtype} on "
                f"{first.device} (expected one dtype and device)"
            )
        if len(other.shape) != len(first.shape) or (same_shape and other.shape != first.shape):
            raise ValueError(
                f"Cameras.{op}: batch shapes {tuple(first.shape)} and {tuple(other.shape)} "
                f"(expected {'the same shape' if same_shape else 'the same number of dims'})"
            )
    return len(first.shape)


def _batch_dim(dim: int, ndim: int, op: str) -> int:
    """``dim`` as a non-negative index into ``ndim`` batch dims, or a clear error."""
    if not -ndim <= dim < ndim:
        raise IndexError(f"Cameras.{op}: dim {dim} is outside the {ndim} batch dims")
    return dim % ndim


def look_at(eye: Tensor, target: Tensor, up: Tensor | None = None) -> Tensor:
    """Camera-to-world poses (OpenCV axes) at ``eye`` looking at ``target``.

    eye, target: (..., 3). up: (..., 3) world "up" direction (default ``-y``, i.e. OpenCV's
    image-up for a level camera). Returns (..., 4, 4).
    """
    if up is None:
        up = torch.tensor([0.0, -1.0, 0.0], dtype=eye.dtype, device=eye.device)
    eye, target, up = torch.broadcast_tensors(eye, target, up)
    forward = target - eye
    norm = forward.norm(dim=-1, keepdim=True)
    if (norm < 1e-9).any():
        raise ValueError("look_at: eye and target coincide (expected distinct points)")
    z = forward / norm
    # camera y points down (−up), so right = y × z = z × up
    x = torch.linalg.cross(z, up)
    x_norm = x.norm(dim=-1, keepdim=True)
    if (x_norm < 1e-9).any():
        raise ValueError(
            "look_at: viewing direction is parallel to up (expected them not parallel)"
        )
    x = x / x_norm
    y = torch.linalg.cross(z, x)
    c2w = torch.zeros(*eye.shape[:-1], 4, 4, dtype=eye.dtype, device=eye.device)
    c2w[..., :3, 0], c2w[..., :3, 1], c2w[..., :3, 2], c2w[..., :3, 3] = x, y, z, eye
    c2w[..., 3, 3] = 1
    return c2w
