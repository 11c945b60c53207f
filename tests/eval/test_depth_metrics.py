import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from any4d.eval import DEPTH_CAPS, depth_cap, depth_metrics

CAP = 15.0


def _video(seed, frames=3, height=8, width=10):
    """Truth in [1, 20] m with invalid (0) pixels, some beyond CAP; a noisy affine prediction."""
    rng = np.random.default_rng(seed)
    gt = rng.uniform(1.0, 20.0, size=(frames, height, width))
    gt[rng.random(gt.shape) < 0.1] = 0.0
    pred = 0.3 * gt + 0.5 + 0.3 * rng.standard_normal(gt.shape) ** 3
    pred = np.clip(pred, 0.05, None)
    return pred, gt


# ---------------------------------------------------------------- reference computations


def _reference_depthcrafter(pred, gt, cap):
    # DepthCrafter benchmark/eval/eval.py eval_single (--domain depth) and metric.py.
    valid = (gt > 1e-3) & (gt < cap)
    disparity = np.clip(np.where(pred > 0, 1.0 / np.where(pred > 0, pred, 1.0), 0.0), 1e-3, None)
    a = np.stack([disparity[valid], np.ones(valid.sum())], 1)
    scale, shift = np.linalg.lstsq(a, 1.0 / (gt[valid] + 1e-8), rcond=None)[0]
    depth = np.clip(1.0 / np.clip(scale * disparity + shift, 1e-3, None), 1e-3, cap)
    rows = []
    for d, g, m in zip(depth, gt, valid, strict=True):
        if m.sum() == 0:
            continue
        d, g = d[m], g[m]
        rows.append(
            [
                np.mean(np.abs(d - g) / g),
                np.sqrt(np.mean((d - g) ** 2)),
                np.mean(np.maximum(d / g, g / d) < 1.25),
            ]
        )
    return dict(zip(("abs_rel", "rmse", "delta1"), np.mean(rows, 0), strict=True))


def _l1_fit_by_linear_programme(p, g):
    n = len(p)
    lp = linprog(
        np.r_[0.0, 0.0, np.ones(2 * n)],
        A_eq=np.c_[p, np.ones(n), -np.eye(n), np.eye(n)],
        b_eq=g,
        bounds=[(None, None)] * 2 + [(0, None)] * (2 * n),
        method="highs",
    )
    return lp.x[0], lp.x[1]


def _reference_pooled(pred, gt, cap, align):
    # Geo4D dust3r/depth_eval.py depth_evaluation(max_depth=cap, post_clip_max=cap).
    valid = (gt > 0) & (gt < cap)
    p, g = pred[valid], gt[valid]
    if align == "geo4d":
        scale, shift = _l1_fit_by_linear_programme(p, g)
    elif align == "scale":
        candidates = g / p  # the optimum is one of the ratios
        costs = [np.abs(c * p - g).sum() for c in candidates]
        scale, shift = candidates[int(np.argmin(costs))], 0.0
    else:
        scale, shift = 1.0, 0.0
    d = np.minimum(scale * p + shift, cap)
    clamped = np.maximum(d, 1e-5)
    return {
        "abs_rel": np.mean(np.abs(d - g) / g),
        "rmse": np.sqrt(np.mean((d - g) ** 2)),
        "delta1": np.mean(np.maximum(clamped / g, g / clamped) < 1.25),
    }


def _assert_metrics(ours, reference, rel=1e-9):
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, rel=rel, abs=1e-12), (key, ours, reference)


# ---------------------------------------------------------------- each protocol


@pytest.mark.parametrize("seed", range(3))
def test_depthcrafter_protocol_equals_a_direct_computation(seed):
    pred, gt = _video(seed)
    ours = depth_metrics(pred, gt, protocol="depthcrafter", max_depth=CAP)
    _assert_metrics(ours, _reference_depthcrafter(pred, gt, CAP))


@pytest.mark.parametrize("seed", range(3))
def test_geo4d_protocol_equals_a_direct_computation_with_an_exact_l1_fit(seed):
    pred, gt = _video(seed)
    ours = depth_metrics(pred, gt, protocol="geo4d", max_depth=CAP)
    _assert_metrics(ours, _reference_pooled(pred, gt, CAP, "geo4d"), rel=1e-7)


@pytest.mark.parametrize("protocol", ["scale", "none"])
def test_scale_and_none_protocols_equal_a_direct_computation(protocol):
    pred, gt = _video(3)
    ours = depth_metrics(pred, gt, protocol=protocol, max_depth=CAP)
    _assert_metrics(ours, _reference_pooled(pred, gt, CAP, protocol))


def test_pooled_protocols_weigh_each_frame_by_its_valid_pixels():
    pred, gt = _video(4, frames=2)
    gt[0, :, 3:] = 0.0  # frame 0 has far fewer valid pixels than frame 1
    video = depth_metrics(pred, gt, protocol="none", max_depth=CAP)
    frames = [
        depth_metrics(pred[t : t + 1], gt[t : t + 1], protocol="none", max_depth=CAP)
        for t in range(2)
    ]
    counts = [f["n_valid"] for f in frames]
    weighted = sum(n * f["abs_rel"] for n, f in zip(counts, frames, strict=True)) / sum(counts)
    assert video["abs_rel"] == pytest.approx(weighted, rel=1e-12)
    assert video["abs_rel"] != pytest.approx((frames[0]["abs_rel"] + frames[1]["abs_rel"]) / 2)


# ---------------------------------------------------------------- invariances


def test_geo4d_alignment_is_invariant_to_a_positive_scale_and_shift_of_the_depth():
    pred, gt = _video(5, frames=4, height=16, width=16)
    base = depth_metrics(pred, gt, protocol="geo4d", max_depth=CAP)
    moved = depth_metrics(7.5 * pred + 3.0, gt, protocol="geo4d", max_depth=CAP)
    _assert_metrics(moved, {k: base[k] for k in ("abs_rel", "rmse", "delta1")})


def test_depthcrafter_alignment_is_invariant_to_a_positive_scale_and_shift_of_the_disparity():
    pred, gt = _video(6, frames=4, height=16, width=16)
    base = depth_metrics(pred, gt, protocol="depthcrafter", max_depth=CAP)
    moved_disparity = 0.3 / pred + 0.1  # pred's disparity, scaled and shifted
    moved = depth_metrics(1.0 / moved_disparity, gt, protocol="depthcrafter", max_depth=CAP)
    _assert_metrics(moved, {k: base[k] for k in ("abs_rel", "rmse", "delta1")})


def test_scale_alignment_is_invariant_to_a_positive_scale_of_the_depth():
    pred, gt = _video(7)
    base = depth_metrics(pred, gt, protocol="scale", max_depth=CAP)
    moved = depth_metrics(0.01 * pred, gt, protocol="scale", max_depth=CAP)
    _assert_metrics(moved, {k: base[k] for k in ("abs_rel", "rmse", "delta1")})


def test_a_perfect_prediction_scores_zero_error_under_every_protocol():
    _, gt = _video(8)
    for protocol in ("depthcrafter", "geo4d", "scale", "none"):
        metrics = depth_metrics(gt.copy(), gt, protocol=protocol, max_depth=CAP)
        # DepthCrafter fits to 1 / (gt + 1e-8), which leaves a relative error of ~1e-8
        assert metrics["abs_rel"] < 1e-7 and metrics["delta1"] == 1.0, protocol


# ---------------------------------------------------------------- masks, caps, frames


def test_valid_mask_excludes_pixels_from_fit_and_score():
    pred, gt = _video(9)
    rng = np.random.default_rng(0)
    valid = rng.random(gt.shape) < 0.7
    masked_gt = np.where(valid, gt, 0.0)
    for protocol in ("depthcrafter", "geo4d"):
        ours = depth_metrics(pred, gt, torch.from_numpy(valid), protocol, max_depth=CAP)
        expected = depth_metrics(pred, masked_gt, protocol=protocol, max_depth=CAP)
        _assert_metrics(ours, {k: expected[k] for k in ("abs_rel", "rmse", "delta1", "n_valid")})


def test_depthcrafter_drops_frames_without_valid_pixels():
    pred, gt = _video(10, frames=4)
    gt[2] = 0.0
    ours = depth_metrics(pred, gt, protocol="depthcrafter", max_depth=CAP)
    assert ours["n_frames"] == 3
    _assert_metrics(ours, _reference_depthcrafter(pred, gt, CAP))


def test_the_dataset_cap_comes_from_the_table_and_is_echoed():
    pred, gt = _video(11)
    metrics = depth_metrics(pred, gt, protocol="depthcrafter", dataset="Bonn")
    assert metrics["max_depth"] == DEPTH_CAPS["depthcrafter"]["bonn"] == 10.0
    assert metrics["n_valid"] == int(((gt > 1e-3) & (gt < 10.0)).sum())
    assert depth_metrics(pred, gt, dataset="bonn")["max_depth"] == 70.0
    assert depth_metrics(pred, gt, dataset="kitti")["max_depth"] is None
    assert depth_cap("scale", "7-Scenes") == DEPTH_CAPS["geo4d"]["7scenes"]
    assert depth_metrics(pred, gt, protocol="none")["max_depth"] is None


def test_unknown_dataset_or_two_caps_are_rejected():
    pred, gt = _video(12)
    with pytest.raises(ValueError, match="no depth cap for protocol 'geo4d'"):
        depth_metrics(pred, gt, dataset="scannet")
    with pytest.raises(ValueError, match="both set"):
        depth_metrics(pred, gt, dataset="sintel", max_depth=70.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(protocol="median"), "protocol is 'median'"),
        (dict(max_depth=-1.0), "max_depth is -1.0"),
        (dict(max_depth=0.5), "no valid pixel"),
        (dict(valid=np.ones((3, 8, 10))), "expected bool"),
    ],
)
def test_depth_metrics_reject_bad_arguments(kwargs, message):
    pred, gt = _video(13)
    with pytest.raises(ValueError, match=message):
        depth_metrics(pred, gt, **kwargs)


def test_depth_metrics_reject_mismatched_shapes_and_nan_predictions():
    pred, gt = _video(14)
    with pytest.raises(ValueError, match="resize the prediction"):
        depth_metrics(pred[:, :4], gt)
    with pytest.raises(ValueError, match=r"expected \(T, H, W\)"):
        depth_metrics(pred[0], gt[0])
    pred[gt > 0] = np.nan
    with pytest.raises(ValueError, match="pred has NaN"):
        depth_metrics(pred, gt)


def test_scene_shaped_depth_with_a_channel_axis_is_accepted():
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(3, 8, 8, generator=g) + 0.5
    pred = 2 * gt + 0.1
    flat = depth_metrics(pred, gt, protocol="geo4d")
    scene_shaped = depth_metrics(pred[:, None], gt[:, None], protocol="geo4d")
    assert flat["abs_rel"] == scene_shaped["abs_rel"] and flat["rmse"] == scene_shaped["rmse"]
