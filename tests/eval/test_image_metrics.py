import math

import pytest
import torch
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)
from torchmetrics.image import PeakSignalNoiseRatio

from any4d.eval import image_metrics, psnr_from_mse, scored_frames, to_unit_range


def _video(seed, shape=(2, 5, 3, 24, 32)):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g) * 2 - 1
    noise = torch.randn(shape, generator=g)
    # a different noise level per frame, so per-frame PSNRs differ
    level = torch.linspace(0.02, 0.3, shape[1])[None, :, None, None, None]
    return (target + level * noise).clamp(-1, 1), target


def test_psnr_of_a_constant_offset_is_hand_computed():
    target = torch.full((4, 3, 16, 16), -0.5)
    pred = target + 0.2  # 0.1 in [0, 1] units: MSE 0.01, PSNR = 10 log10(1 / 0.01) = 20 dB
    metrics = image_metrics(pred, target)
    assert metrics["psnr_pooled"] == pytest.approx(20.0, abs=1e-4)
    assert metrics["psnr_frame_mean"] == pytest.approx(20.0, abs=1e-4)
    assert metrics["mse"] == pytest.approx(0.01, rel=1e-5)


def test_pooled_and_frame_mean_psnr_differ_and_each_equals_its_direct_computation():
    pred, target = _video(0)
    metrics = image_metrics(pred, target)
    p, t = (to_unit_range(x).flatten(0, 1).double() for x in (pred, target))
    per_frame_mse = (p - t).square().mean((1, 2, 3))
    pooled = -10 * math.log10(float(per_frame_mse.mean()))
    frame_mean = float((-10 * torch.log10(per_frame_mse)).mean())
    assert metrics["psnr_pooled"] == pytest.approx(pooled, abs=1e-4)
    assert metrics["psnr_frame_mean"] == pytest.approx(frame_mean, abs=1e-4)
    assert metrics["psnr_frame_mean"] - metrics["psnr_pooled"] > 1.0  # Jensen: mean ≥ pooled


def test_psnr_and_ssim_equal_torchmetrics_on_the_scored_frames():
    pred, target = _video(1)
    metrics = image_metrics(pred, target, context=(0, -1))
    p, t = (((x[:, 1:-1] + 1) / 2).flatten(0, 1) for x in (pred, target))
    assert metrics["psnr_pooled"] == pytest.approx(
        float(peak_signal_noise_ratio(p, t, data_range=1.0)), rel=1e-6
    )
    assert metrics["ssim"] == pytest.approx(
        float(structural_similarity_index_measure(p, t, data_range=1.0)), rel=1e-6
    )
    assert metrics["n_frames"] == 2 * 3


def test_ssim_of_identical_images_is_one():
    _, target = _video(2)
    assert image_metrics(target, target)["ssim"] == pytest.approx(1.0, abs=1e-6)


def test_context_frames_are_not_scored():
    pred, target = _video(3)
    ruined = pred.clone()
    ruined[:, 0] = -target[:, 0]
    ruined[:, -1] = -target[:, -1]
    assert image_metrics(ruined, target, context=(0, -1)) == image_metrics(
        pred, target, context=(0, 4)
    )


def test_dfots_dataset_psnr_is_the_psnr_of_the_frame_weighted_mse():
    # DFoT keeps one torchmetrics PeakSignalNoiseRatio over the whole evaluation set.
    videos = [_video(4, (1, 3, 3, 16, 16)), _video(5, (2, 4, 3, 16, 16))]
    module = PeakSignalNoiseRatio(data_range=1.0)
    for pred, target in videos:
        module.update(*(to_unit_range(x).flatten(0, 1) for x in (pred, target)))
    results = [image_metrics(pred, target) for pred, target in videos]
    frames = sum(r["n_frames"] for r in results)
    pooled_mse = sum(r["mse"] * r["n_frames"] for r in results) / frames
    assert psnr_from_mse(pooled_mse) == pytest.approx(float(module.compute()), rel=1e-6)


def test_rgb_is_mapped_from_minus_one_one_to_zero_one_and_clamped():
    rgb = torch.tensor([-1.0, 0.0, 1.0, 3.0, float("nan")])
    torch.testing.assert_close(to_unit_range(rgb), torch.tensor([0.0, 0.5, 1.0, 1.0, 0.0]))


def test_scored_frames_exclude_context_with_negative_indices():
    assert scored_frames(5, (0, -1)) == [1, 2, 3]
    assert scored_frames(5, range(2)) == [2, 3, 4]
    with pytest.raises(ValueError, match="outside a video of 5 frames"):
        scored_frames(5, (5,))
    with pytest.raises(ValueError, match="excludes all 2 frames"):
        scored_frames(2, (0, -1))


def test_image_metrics_reject_mismatched_or_non_rgb_videos():
    pred, target = _video(6)
    with pytest.raises(ValueError, match="expected the same"):
        image_metrics(pred, target[:, :4])
    with pytest.raises(ValueError, match=r"expected \(B, T, 3, H, W\)"):
        image_metrics(pred[:, :, :1], target[:, :, :1])
