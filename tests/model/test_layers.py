"""Per-stream layers: the stream index selects weights; adaLN chunks; float32 LayerNorm."""

from __future__ import annotations

import torch

from any4d.model.layers import StreamLinear, fp32_layer_norm, modulation_chunks


def test_stream_linear_uses_the_weights_the_index_names():
    layer = StreamLinear(4, 3, 5)
    x = torch.randn(2, 7, 3)
    out = layer(x, torch.tensor([3, 1]))
    for i, s in enumerate((3, 1)):
        expected = x[i] @ layer.weight[s].T + layer.bias[s]
        torch.testing.assert_close(out[i], expected)
    torch.testing.assert_close(layer(x, slice(1, 3)), layer(x, torch.tensor([1, 2])))


def test_modulation_chunks_add_each_streams_table_to_its_time():
    table = torch.randn(4, 6, 8)
    time = torch.randn(2, 1, 3, 1, 1, 6, 8)  # (S, b, t, h, w, 6, D): one time per frame
    chunks = modulation_chunks(table, torch.tensor([0, 2]), time)
    assert len(chunks) == 6 and chunks[0].shape == (2, 1, 3, 1, 1, 8)
    torch.testing.assert_close(chunks[4][1, 0, 2, 0, 0], table[2, 4] + time[1, 0, 2, 0, 0, 4])


def test_fp32_layer_norm_is_float32_with_zero_mean_unit_variance():
    x = (3 * torch.randn(5, 16) + 1).bfloat16()
    out = fp32_layer_norm(x, 1e-6)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.mean(-1), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(5), atol=1e-3, rtol=0)
