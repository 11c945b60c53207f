import numpy as np
import pytest
import torch
from evo.core.geometry import umeyama_alignment
from scipy.optimize import linprog
from scipy.spatial.transform import Rotation

from any4d.eval import (
    fit_scale_l1,
    fit_scale_shift_l1,
    fit_scale_shift_lstsq,
    umeyama,
)
from any4d.eval.alignment import weighted_median


def _points(n, seed):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, 3)))


def test_umeyama_recovers_an_exact_similarity():
    source = _points(10, 0)
    rotation = torch.from_numpy(Rotation.random(random_state=0).as_matrix())
    target = 2.5 * source @ rotation.T + torch.tensor([1.0, -2.0, 3.0])
    fit = umeyama(source, target)
    torch.testing.assert_close(fit.rotation, rotation)
    assert fit.scale == pytest.approx(2.5, rel=1e-12)
    torch.testing.assert_close(fit.apply_to_points(source), target)


@pytest.mark.parametrize("with_scale", [True, False])
def test_umeyama_equals_evos_umeyama_alignment(with_scale):
    source, target = _points(15, 1), _points(15, 2)
    fit = umeyama(source, target, with_scale=with_scale)
    rotation, translation, scale = umeyama_alignment(source.numpy().T, target.numpy().T, with_scale)
    np.testing.assert_allclose(fit.rotation.numpy(), rotation, atol=1e-12)
    np.testing.assert_allclose(fit.translation.numpy(), translation, atol=1e-12)
    assert fit.scale == pytest.approx(scale, rel=1e-12)


def test_umeyama_finds_a_rotation_for_coplanar_points():
    source = _points(8, 3)
    source[:, 2] = 0  # rank 2 is enough (a planar trajectory)
    rotation = torch.from_numpy(Rotation.random(random_state=3).as_matrix())
    fit = umeyama(source, source @ rotation.T)
    torch.testing.assert_close(fit.rotation, rotation)


def test_poses_move_with_the_similarity():
    fit = umeyama(_points(6, 4), _points(6, 5))
    c2w = torch.eye(4, dtype=torch.float64).repeat(6, 1, 1)
    c2w[:, :3, :3] = torch.from_numpy(Rotation.random(6, random_state=4).as_matrix())
    c2w[:, :3, 3] = _points(6, 6)
    moved = fit.apply_to_poses(c2w)
    torch.testing.assert_close(moved[:, :3, :3], fit.rotation @ c2w[:, :3, :3])
    torch.testing.assert_close(moved[:, :3, 3], fit.apply_to_points(c2w[:, :3, 3]))
    torch.testing.assert_close(moved[:, 3], c2w[:, 3])


@pytest.mark.parametrize(
    "source, message",
    [
        (torch.ones(5, 3, dtype=torch.float64), "degenerate"),
        (torch.linspace(0, 1, 5, dtype=torch.float64)[:, None] * torch.ones(3), "degenerate"),
        (torch.zeros(2, 3, dtype=torch.float64), "expected ≥ 3"),
    ],
)
def test_umeyama_rejects_points_that_do_not_determine_a_rotation(source, message):
    with pytest.raises(ValueError, match=message):
        umeyama(source, _points(len(source), 7))


def _l1(pred, target, scale, shift):
    return float((scale * pred + shift - target).abs().sum())


def _depth_pair(n, seed):
    g = torch.Generator().manual_seed(seed)
    pred = 0.5 + 5 * torch.rand(n, generator=g, dtype=torch.float64)
    noise = torch.randn(n, generator=g, dtype=torch.float64) ** 3  # heavy tails
    return pred, 1.7 * pred + 0.4 + 0.2 * noise


@pytest.mark.parametrize("seed", range(4))
def test_l1_fit_equals_the_linear_programme_optimum(seed):
    pred, target = _depth_pair(60, seed)
    scale, shift = fit_scale_shift_l1(pred, target)
    # min Σ (u + v)  s.t.  s·p + t − g = u − v,  u, v ≥ 0
    n = len(pred)
    a_eq = np.c_[pred.numpy(), np.ones(n), -np.eye(n), np.eye(n)]
    cost = np.r_[0.0, 0.0, np.ones(2 * n)]
    bounds = [(None, None)] * 2 + [(0, None)] * (2 * n)
    lp = linprog(cost, A_eq=a_eq, b_eq=target.numpy(), bounds=bounds, method="highs")
    assert _l1(pred, target, scale, shift) == pytest.approx(lp.fun, rel=1e-9)


def test_no_scale_and_shift_has_lower_l1_error_than_the_fit():
    pred, target = _depth_pair(20_000, 10)
    scale, shift = fit_scale_shift_l1(pred, target)
    best = _l1(pred, target, scale, shift)
    g = torch.Generator().manual_seed(0)
    directions = torch.randn(200, 2, generator=g, dtype=torch.float64)
    directions = directions / directions.norm(dim=1, keepdim=True)
    for step in (1e-7, 1e-5, 1e-3, 1e-1):
        for ds, dt in directions.tolist():
            assert _l1(pred, target, scale + step * ds, shift + step * dt) >= best * (1 - 1e-12)


def test_l1_fit_is_equivariant_to_a_scale_and_shift_of_the_prediction():
    pred, target = _depth_pair(5_000, 11)
    scale, shift = fit_scale_shift_l1(pred, target)
    scale2, shift2 = fit_scale_shift_l1(3.0 * pred - 2.0, target)
    assert scale2 == pytest.approx(scale / 3.0, rel=1e-9)
    assert shift2 == pytest.approx(shift + 2.0 * scale / 3.0, rel=1e-9)


def test_lstsq_fit_equals_numpy_lstsq():
    pred, target = _depth_pair(500, 12)
    a = np.c_[pred.numpy(), np.ones(len(pred))]
    expected = np.linalg.lstsq(a, target.numpy(), rcond=None)[0]
    np.testing.assert_allclose(fit_scale_shift_lstsq(pred, target), expected, rtol=1e-10)


def test_l1_scale_has_no_better_neighbour():
    pred, target = _depth_pair(3_001, 13)
    scale = fit_scale_l1(pred, target)
    best = _l1(pred, target, scale, 0.0)
    for step in (1e-9, 1e-6, 1e-3, 1e-1):
        assert _l1(pred, target, scale * (1 + step), 0.0) >= best
        assert _l1(pred, target, scale * (1 - step), 0.0) >= best


def test_weighted_median_minimises_the_weighted_absolute_deviation():
    g = torch.Generator().manual_seed(14)
    values = torch.randn(101, generator=g, dtype=torch.float64)
    weights = torch.rand(101, generator=g, dtype=torch.float64)
    median, index = weighted_median(values, weights)
    assert values[index] == median
    cost = (weights * (values - median).abs()).sum()
    others = (weights[None] * (values[None] - values[:, None]).abs()).sum(1)
    assert cost <= others.min()


@pytest.mark.parametrize("fit", [fit_scale_shift_l1, fit_scale_shift_lstsq])
def test_scale_and_shift_fits_reject_a_constant_prediction(fit):
    with pytest.raises(ValueError, match="pred is constant"):
        fit(torch.ones(10, dtype=torch.float64), torch.rand(10, dtype=torch.float64))


def test_fits_reject_mismatched_or_non_finite_values():
    with pytest.raises(ValueError, match=r"expected the same \(N,\)"):
        fit_scale_shift_l1(torch.rand(5), torch.rand(6))
    with pytest.raises(ValueError, match="finite"):
        fit_scale_l1(torch.tensor([1.0, float("nan")]), torch.ones(2))
    with pytest.raises(ValueError, match="all zero"):
        fit_scale_l1(torch.zeros(3), torch.ones(3))
