"""The joint self-attention's layout: every stream's tokens in one sequence per head."""

from __future__ import annotations

import torch

from any4d.model.block import concat_streams, split_streams


def test_concat_streams_lays_the_streams_end_to_end():
    x = torch.randn(3, 2, 5, 4, 6)  # (S, B, L, H, d)
    joint = concat_streams(x)
    assert joint.shape == (2, 4, 15, 6)
    for s in range(3):
        torch.testing.assert_close(joint[:, :, 5 * s : 5 * (s + 1)], x[s].transpose(1, 2))


def test_split_streams_inverts_concat_streams():
    x = torch.randn(3, 2, 5, 4, 6)
    assert torch.equal(split_streams(concat_streams(x), 3), x)
