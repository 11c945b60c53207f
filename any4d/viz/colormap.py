"""False colour for the geometric streams: depth maps and Plücker ray maps → RGB in ``[0, 1]``.

Depth is coloured by inverse depth so that near surfaces, where depth detail matters most, get
most of the colour range; the near end of the range takes the high (warm, bright) end of the
colormap. Matplotlib supplies the colormap as a lookup table only; the mapping runs in torch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from any4d.geometry.rays import check_ray_map
from any4d.geometry.vectors import norm

# Robust range: the 2nd / 98th percentiles of valid inverse depth, so a few stray pixels (a
# sensor spike, a sky pixel at 1e4 m) do not squeeze every other pixel into one colour.
DEFAULT_PERCENTILES = (2.0, 98.0)
# Entries of the lookup table sampled from the matplotlib colormap (its own resolution).
_LUT_SIZE = 256


def colormap_table(name: str, *, dtype: torch.dtype, device) -> Tensor:
    """(N, 3) RGB lookup table of the matplotlib colormap ``name``, low end first."""
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError('colouring depth needs matplotlib: pip install "any4d[viz]"') from error
    try:
        colormap = matplotlib.colormaps[name]
    except KeyError:
        raise ValueError(
            f"cmap {name!r} is not a matplotlib colormap (e.g. 'turbo', 'viridis', 'magma')"
        ) from None
    samples = [i / (_LUT_SIZE - 1) for i in range(_LUT_SIZE)]
    table = colormap(samples)[:, :3]  # (N, 4) RGBA as numpy → drop alpha
    return torch.as_tensor(table, dtype=dtype, device=device)


def _valid_mask(depth: Tensor, valid: Tensor | None) -> Tensor:
    """Bool mask of the depth's shape: positive finite depth, and ``valid`` where given."""
    mask = (depth > 0) & torch.isfinite(depth)
    if valid is not None:
        if valid.dtype != torch.bool:
            raise ValueError(f"valid must be a bool tensor, got {valid.dtype}")
        try:
            mask = mask & valid
        except RuntimeError:
            raise ValueError(
                f"valid has shape {tuple(valid.shape)} but depth has {tuple(depth.shape)} "
                "(expected a mask broadcastable to depth)"
            ) from None
        if mask.shape != depth.shape:
            raise ValueError(
                f"valid has shape {tuple(valid.shape)}, which would broadcast depth "
                f"{tuple(depth.shape)} to {tuple(mask.shape)} (expected depth's shape)"
            )
    return mask


def _check_depth(depth: Tensor) -> None:
    if not isinstance(depth, Tensor) or not depth.is_floating_point():
        raise ValueError("depth must be a floating-point tensor (..., 1, H, W) in metres")
    if depth.dim() < 3 or depth.shape[-3] != 1:
        raise ValueError(f"depth has shape {tuple(depth.shape)} (expected (..., 1, H, W))")


def depth_range(
    depth: Tensor,
    valid: Tensor | None = None,
    *,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
) -> tuple[float, float] | None:
    """Robust ``(near, far)`` in metres of the valid depth over the whole input.

    depth: (..., 1, H, W) metres, ``0`` = invalid. valid: optional bool mask of depth's shape.
    The bounds are percentiles of inverse depth (equivalently of depth: the map is monotone).
    Returns ``None`` when no pixel is valid.
    """
    _check_depth(depth)
    low, high = percentiles
    if not 0 <= low < high <= 100:
        raise ValueError(f"percentiles are {percentiles} (expected 0 ≤ low < high ≤ 100)")
    values = depth[_valid_mask(depth, valid)]
    if values.numel() == 0:
        return None
    # kthvalue instead of torch.quantile: quantile refuses inputs above 2**24 elements, which a
    # long clip at video resolution exceeds.
    n = values.numel()
    near = values.kthvalue(1 + round(low / 100 * (n - 1))).values
    far = values.kthvalue(1 + round(high / 100 * (n - 1))).values
    return float(near), float(far)


def colorize_depth(
    depth: Tensor,
    valid: Tensor | None = None,
    *,
    cmap: str = "turbo",
    near: float | None = None,
    far: float | None = None,
) -> Tensor:
    """Colour-map a depth map or clip by inverse depth.

    depth: (..., 1, H, W) metres, ``0`` = invalid. valid: optional bool mask of depth's shape
    (pixels outside it count as invalid too). near / far: the depths (metres) that get the top
    and bottom of the colormap; each one not given is the robust percentile of the valid depth
    over the WHOLE input (``depth_range``), so every frame of a clip shares one colour scale.
    Depth nearer than ``near`` / farther than ``far`` saturates.

    Returns (..., 3, H, W) float in ``[0, 1]`` (depth's floating dtype, on its device); invalid
    pixels are black. When the range collapses (one depth value) valid pixels get the colormap's
    middle colour.
    """
    _check_depth(depth)
    mask = _valid_mask(depth, valid)
    if near is None or far is None:
        auto = depth_range(depth, valid)
        if auto is None:  # nothing valid: an all-black picture, no range needed
            return torch.zeros(
                *depth.shape[:-3], 3, *depth.shape[-2:], dtype=depth.dtype, device=depth.device
            )
        near = auto[0] if near is None else near
        far = auto[1] if far is None else far
    if not (0 < near <= far < float("inf")):
        raise ValueError(f"near = {near}, far = {far} (expected 0 < near ≤ far < inf metres)")

    inverse = torch.where(mask, 1.0 / depth.clamp_min(torch.finfo(depth.dtype).tiny), 0.0)
    inv_near, inv_far = 1.0 / near, 1.0 / far
    span = inv_near - inv_far
    if span <= 1e-12 * inv_near:
        position = torch.full_like(inverse, 0.5)
    else:
        position = ((inverse - inv_far) / span).clamp(0, 1)  # 1 = near, 0 = far

    table = colormap_table(cmap, dtype=depth.dtype, device=depth.device)
    return lookup(position.squeeze(-3), table) * mask.to(depth.dtype)


def lookup(position: Tensor, table: Tensor) -> Tensor:
    """Colours of positions along a colormap: (..., H, W) in ``[0, 1]`` (0 = the table's low
    end) and an (N, 3) lookup table (``colormap_table``) → (..., 3, H, W), nearest entry."""
    index = (position.clamp(0, 1) * (table.shape[0] - 1)).round().long()
    return table[index].movedim(-1, -3)


def colorize_rays(rays: Tensor) -> Tensor:
    """Ray directions as colour: ``(d + 1) / 2``.

    rays: (..., 6, H, W) Plücker rays ``(d, m)`` with unit ``d`` (``any4d.geometry.plucker_rays``).
    Returns (..., 3, H, W) in ``[0, 1]``: red = +x (right), green = +y (down), blue = +z
    (forward) in the world frame — the first camera's frame after ``relative_to_first``.
    """
    check_ray_map(rays)
    return ((rays[..., :3, :, :] + 1) / 2).clamp(0, 1)


def colorize_moments(rays: Tensor, scale: float | None = None) -> Tensor:
    """Ray moments as colour: ``(m / scale + 1) / 2``.

    rays: (..., 6, H, W) Plücker rays ``(d, m)``. scale: the moment norm that reaches full
    colour; default the largest norm over the WHOLE input, so frames of one clip share a scale
    and relative magnitudes stay visible (give one scale to compare clips: larger moments
    saturate). Returns (..., 3, H, W) in ``[0, 1]``; zero moment (a camera at the origin, e.g.
    the first frame of a clip relative to its first camera) is mid-grey.
    """
    check_ray_map(rays)
    moments = rays[..., 3:, :, :]
    if scale is None:
        scale = norm(moments, dim=-3).amax() if moments.numel() else moments.new_zeros(())
    elif not 0 <= float(scale) < float("inf"):
        raise ValueError(f"scale is {scale!r} (expected a finite moment norm ≥ 0)")
    if scale <= 0:
        return torch.full_like(moments, 0.5)
    return ((moments / scale + 1) / 2).clamp(0, 1)
