"""Tiny diffusers Wan transformers and their original-format (``WanModel``) state dicts."""

from __future__ import annotations

import torch
from diffusers import WanTransformer3DModel

# Tiny config in diffusers' own test style: 2 heads of 12 dims (RoPE split 4/4/4).
TINY_WAN = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=12,
    in_channels=4,
    out_channels=4,
    text_dim=16,
    freq_dim=32,
    ffn_dim=32,
    num_layers=2,
    rope_max_seq_len=32,
)

# diffusers → original key fragments, the inverse of WAN.md §2's table, applied in order.
_TO_ORIGINAL = [
    ("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
    ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
    ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
    ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
    ("condition_embedder.time_proj", "time_projection.1"),
    ("attn1", "self_attn"),
    ("attn2", "cross_attn"),
    (".to_out.0.", ".o."),
    (".to_q.", ".q."),
    (".to_k.", ".k."),
    (".to_v.", ".v."),
    ("ffn.net.0.proj", "ffn.0"),
    ("ffn.net.2", "ffn.2"),
    ("proj_out", "head.head"),
    (".norm2.", ".norm__swap."),
    (".norm3.", ".norm2."),
    (".norm__swap.", ".norm3."),
]


def tiny_wan(seed: int = 0, **overrides) -> WanTransformer3DModel:
    """A diffusers Wan transformer with every parameter random (no zero-initialised layer)."""
    torch.manual_seed(seed)
    model = WanTransformer3DModel(**{**TINY_WAN, **overrides}).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    return model


def to_original_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A diffusers-format Wan state dict renamed to the original ``WanModel`` keys."""
    out = {}
    for key, value in state.items():
        if key == "scale_shift_table":
            new = "head.modulation"
        elif key.endswith(".scale_shift_table"):
            new = key.replace("scale_shift_table", "modulation")
        else:
            new = key
            for old, replacement in _TO_ORIGINAL:
                new = new.replace(old, replacement)
        out[new] = value.clone()
    return out


def original_config(model: WanTransformer3DModel) -> dict:
    """The original ``WanModel`` config.json of a diffusers Wan transformer."""
    c = model.config
    return {
        "model_type": "t2v",
        "patch_size": list(c.patch_size),
        "text_len": 512,
        "in_dim": c.in_channels,
        "dim": c.num_attention_heads * c.attention_head_dim,
        "ffn_dim": c.ffn_dim,
        "freq_dim": c.freq_dim,
        "text_dim": c.text_dim,
        "out_dim": c.out_channels,
        "num_heads": c.num_attention_heads,
        "num_layers": c.num_layers,
        "window_size": [-1, -1],
        "qk_norm": True,
        "cross_attn_norm": True,
        "eps": c.eps,
    }
