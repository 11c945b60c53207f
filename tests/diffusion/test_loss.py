"""Loss: target groups only, per-stream normalisation, weights."""

from __future__ import annotations

import torch

from any4d.diffusion import State, flow_matching_loss


def test_loss_counts_only_target_groups_and_normalises_per_stream():
    g = torch.Generator().manual_seed(0)
    shape = (2, 3, 4, 5, 5)
    z0 = {s: torch.randn(shape, generator=g) for s in ("rgb", "depth")}
    eps = {s: torch.randn(shape, generator=g) for s in ("rgb", "depth")}
    truth = {s: eps[s] - z0[s] for s in z0}
    prediction = {s: truth[s].clone() for s in z0}
    prediction["rgb"][:, :, 0] += 10.0  # a clean group: must not count
    prediction["rgb"][:, :, 1] += 1.0  # a target group
    prediction["depth"][1] += 3.0  # sample 1 has no depth: absent
    states = {
        "rgb": torch.tensor([[State.CLEAN, State.TARGET, State.TARGET, State.TARGET]] * 2),
        "depth": torch.tensor([[State.TARGET] * 4, [State.ABSENT] * 4]),
    }
    terms = flow_matching_loss(prediction, z0, eps, states)
    torch.testing.assert_close(terms.per_stream["rgb"], torch.tensor(1 / 3))
    torch.testing.assert_close(terms.per_stream["depth"], torch.tensor(0.0))
    torch.testing.assert_close(terms.total, torch.tensor(0.25 / 3))
    assert terms.counts == {"rgb": 2 * 3 * 3 * 25, "depth": 3 * 4 * 25}


def test_stream_without_targets_reports_nan_and_adds_nothing():
    shape = (1, 2, 2, 3, 3)
    z = {"rgb": torch.zeros(shape), "depth": torch.zeros(shape)}
    prediction = {"rgb": torch.ones(shape, requires_grad=True), "depth": torch.ones(shape)}
    states = {"rgb": torch.tensor([[State.CLEAN] * 2]), "depth": torch.tensor([[State.TARGET] * 2])}
    terms = flow_matching_loss(prediction, z, z, states, weights={"rgb": 1.0, "depth": 1.0})
    assert torch.isnan(terms.per_stream["rgb"]) and terms.counts["rgb"] == 0
    torch.testing.assert_close(terms.total, torch.tensor(1.0))
    terms.total.backward()
    assert torch.equal(prediction["rgb"].grad, torch.zeros(shape))


def test_pixel_weights_weight_the_depth_error():
    shape = (1, 1, 1, 2, 2)
    z = {"depth": torch.zeros(shape)}
    prediction = {"depth": torch.tensor([1.0, 1.0, 3.0, 3.0]).view(shape)}
    states = {"depth": torch.tensor([[State.TARGET]])}
    valid = {"depth": torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)}
    terms = flow_matching_loss(
        prediction, z, z, states, weights={"depth": 1.0}, pixel_weights=valid
    )
    torch.testing.assert_close(terms.total, torch.tensor(1.0))
