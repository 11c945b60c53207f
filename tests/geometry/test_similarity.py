"""Weighted and robust Sim(3) fits between point sets."""

from __future__ import annotations

import pytest
import torch

from any4d.geometry import look_at, robust_umeyama, umeyama


def _transform(points, scale=1.7):
    rotation = look_at(torch.tensor([1.0, 0.5, -2.0]), torch.zeros(3))[:3, :3].double()
    return scale * points @ rotation.T + torch.tensor([0.3, -1.0, 2.0]).double(), rotation


def test_equal_weights_give_the_unweighted_fit():
    source = torch.randn(50, 3, generator=torch.Generator().manual_seed(0)).double()
    target, _ = _transform(source)
    target = target + 0.01 * torch.randn(50, 3, generator=torch.Generator().manual_seed(1))
    plain, weighted = umeyama(source, target), umeyama(source, target, weights=torch.ones(50) * 3)
    torch.testing.assert_close(weighted.rotation, plain.rotation)
    assert weighted.scale == pytest.approx(plain.scale)


def test_robust_fit_ignores_a_minority_of_gross_outliers():
    source = torch.randn(200, 3, generator=torch.Generator().manual_seed(2)).double()
    target, rotation = _transform(source)
    target[:40] += 5 * torch.randn(40, 3, generator=torch.Generator().manual_seed(3)).double()
    plain, robust = umeyama(source, target), robust_umeyama(source, target, iterations=30)
    assert abs(robust.scale - 1.7) < 0.02 < abs(plain.scale - 1.7)
    assert (robust.rotation - rotation).abs().max() < 0.02


@pytest.mark.parametrize("weights", [torch.zeros(10), -torch.ones(10), torch.ones(9)])
def test_bad_weights_are_clear_errors(weights):
    points = torch.randn(10, 3).double()
    with pytest.raises(ValueError, match="weights has shape"):
        umeyama(points, points, weights=weights)
