"""Text conditioning: umT5 prompt embeddings exactly as Wan2.1 computes them (WAN.md §5).

    text = TextEncoder.from_pretrained("Wan2.1-T2V-1.3B-Diffusers")   # text_encoder/ + tokenizer/
    text = TextEncoder.from_original("Wan2.1-T2V-1.3B/models_t5_umt5-xxl-enc-bf16.pth",
                                     "Wan2.1-T2V-1.3B/google/umt5-xxl")  # the original release
    features = text.encode(["a kitchen, the camera walks to the window"])   # (1, 512, 4096)

A prompt is cleaned (HTML entities, ftfy when installed, whitespace), tokenised with padding to
``max_length`` and truncation, and encoded by ``transformers.UMT5EncoderModel``; the last hidden
state is cut to the prompt's true token count and **zero-padded** back to ``max_length`` — the
zero rows are what the transformer's cross-attention sees as "no text", as in Wan's pipelines.
Only local files are read (``local_files_only``) and weights only from safetensors. Needs the
optional ``transformers`` dependency (``pip install any4d[text]``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

ENCODER_DIR, TOKENIZER_DIR = "text_encoder", "tokenizer"
# The original release's T5 (``wan/modules/t5.py``): fixed settings its weights do not show.
_ORIGINAL_MAX_DISTANCE, _ORIGINAL_EPS = 128, 1e-6
# Original key (``blocks.N.`` stripped) → transformers UMT5 key of block N (WAN.md §5).
_ORIGINAL_BLOCK_KEYS = {
    "norm1.weight": "layer.0.layer_norm.weight",
    "attn.q.weight": "layer.0.SelfAttention.q.weight",
    "attn.k.weight": "layer.0.SelfAttention.k.weight",
    "attn.v.weight": "layer.0.SelfAttention.v.weight",
    "attn.o.weight": "layer.0.SelfAttention.o.weight",
    "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
    "norm2.weight": "layer.1.layer_norm.weight",
    "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",  # the GELU branch
    "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",
    "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight",
}


def convert_original_umt5(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Keys of the original ``models_t5_umt5-xxl-enc-bf16.pth`` → ``UMT5EncoderModel``'s."""
    out = {}
    for key, value in state.items():
        if key == "token_embedding.weight":
            out["shared.weight"] = out["encoder.embed_tokens.weight"] = value
        elif key == "norm.weight":
            out["encoder.final_layer_norm.weight"] = value
        elif key.startswith("blocks."):
            _, index, rest = key.split(".", 2)
            if rest not in _ORIGINAL_BLOCK_KEYS:
                raise ValueError(f"unexpected key {key!r} in an original umT5 checkpoint")
            out[f"encoder.block.{index}.{_ORIGINAL_BLOCK_KEYS[rest]}"] = value
        else:
            raise ValueError(f"unexpected key {key!r} in an original umT5 checkpoint")
    return out


def original_umt5_config(state: dict[str, Tensor]):
    """The ``UMT5Config`` of an original-format state dict, read off its tensor shapes."""
    vocab, dim = state["token_embedding.weight"].shape
    buckets, heads = state["blocks.0.pos_embedding.embedding.weight"].shape
    layers = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    attention = int(state["blocks.0.attn.q.weight"].shape[0])  # heads × d_kv
    return _transformers().UMT5Config(
        vocab_size=int(vocab),
        d_model=int(dim),
        d_kv=attention // int(heads),
        num_layers=layers,
        d_ff=int(state["blocks.0.ffn.fc1.weight"].shape[0]),
        num_heads=int(heads),
        relative_attention_num_buckets=int(buckets),
        relative_attention_max_distance=_ORIGINAL_MAX_DISTANCE,
        feed_forward_proj="gated-gelu",
        layer_norm_epsilon=_ORIGINAL_EPS,
        dropout_rate=0.0,
    )


def _transformers():
    """The ``transformers`` module, or an error saying which extra installs it."""
    try:
        import transformers
    except ImportError as error:
        raise ImportError(
            "the umT5 text encoder needs transformers: pip install 'any4d[text]'"
        ) from error
    return transformers


def clean_prompt(text: str) -> str:
    """Wan's ``prompt_clean``: ftfy (when installed), HTML unescaped twice, whitespace collapsed."""
    try:
        import ftfy
    except ImportError:
        pass
    else:
        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


class TextEncoder:
    """A umT5 encoder and its tokenizer.

    encoder:    ``transformers.UMT5EncoderModel`` (any T5-style encoder with ``last_hidden_state``).
    tokenizer:  its ``transformers`` tokenizer.
    max_length: tokens per prompt after padding / truncation (Wan: 512).
    """

    def __init__(self, encoder, tokenizer, max_length: int = 512) -> None:
        if not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length={max_length!r} (expected a positive int)")
        self.encoder = encoder.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length

    @property
    def dim(self) -> int:
        """Feature size of one token (umT5-XXL: 4096): the transformer's ``text_dim``."""
        return int(self.encoder.config.d_model)

    def check_fits(self, text_dim: int | None, source: str = "the text encoder") -> None:
        """ValueError unless the features fit a model whose ``text_dim`` is ``text_dim``;
        ``source`` names the encoder in the message."""
        if self.dim != text_dim:
            raise ValueError(
                f"{source} makes {self.dim}-d features but the model's text_dim is {text_dim}"
            )

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    def to(self, device) -> TextEncoder:
        self.encoder.to(device)
        return self

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        *,
        dtype: torch.dtype | None = None,
        device: str | torch.device = "cpu",
        max_length: int = 512,
    ) -> TextEncoder:
        """Load ``text_encoder/`` and ``tokenizer/`` of a local diffusers Wan2.1 directory
        (nothing is downloaded; weights from safetensors only)."""
        transformers = _transformers()
        directory = Path(directory)
        for name in (ENCODER_DIR, TOKENIZER_DIR):
            if not (directory / name).is_dir():
                raise FileNotFoundError(
                    f"{directory / name} does not exist (expected a diffusers Wan2.1 directory "
                    f"with {ENCODER_DIR}/ and {TOKENIZER_DIR}/)"
                )
        encoder = transformers.UMT5EncoderModel.from_pretrained(
            directory / ENCODER_DIR, local_files_only=True, use_safetensors=True, dtype=dtype
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            directory / TOKENIZER_DIR, local_files_only=True
        )
        return cls(encoder.to(device), tokenizer, max_length)

    @classmethod
    def from_original(
        cls,
        weights: str | Path,
        tokenizer: str | Path,
        *,
        dtype: torch.dtype | None = None,
        device: str | torch.device = "cpu",
        max_length: int = 512,
    ) -> TextEncoder:
        """Load the original Wan2.1 release's encoder: ``models_t5_umt5-xxl-enc-bf16.pth`` (a
        plain state dict, read with ``weights_only=True``) and its tokenizer folder
        (``google/umt5-xxl``). The architecture is read off the weights' shapes; keys are
        converted by ``convert_original_umt5`` and loaded strictly."""
        transformers = _transformers()
        weights, tokenizer = Path(weights), Path(tokenizer)
        if not weights.is_file():
            raise FileNotFoundError(f"umT5 checkpoint {weights} does not exist")
        if not tokenizer.is_dir():
            raise FileNotFoundError(f"umT5 tokenizer folder {tokenizer} does not exist")
        state = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
        if not isinstance(state, dict) or "token_embedding.weight" not in state:
            raise ValueError(
                f"{weights} is not an original umT5 state dict (expected keys such as "
                "'token_embedding.weight', 'blocks.0.attn.q.weight')"
            )
        with torch.device("meta"):
            encoder = transformers.UMT5EncoderModel(original_umt5_config(state))
        encoder.load_state_dict(convert_original_umt5(state), strict=True, assign=True)
        encoder = encoder.to(device=device, dtype=dtype or state["token_embedding.weight"].dtype)
        tokens = transformers.AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
        return cls(encoder, tokens, max_length)

    @torch.no_grad()
    def encode(self, prompts: str | Sequence[str]) -> Tensor:
        """prompts: one string or B strings → (B, max_length, dim) features in the encoder's
        dtype, each prompt's rows past its token count zero."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError(
                f"prompts must be a string or a non-empty list of strings, got {prompts!r}"
            )
        tokens = self.tokenizer(
            [clean_prompt(p) for p in prompts],
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        ids, mask = tokens.input_ids.to(self.device), tokens.attention_mask.to(self.device)
        hidden = self.encoder(ids, mask).last_hidden_state  # (B, max_length, dim)
        keep = torch.arange(self.max_length, device=self.device) < mask.sum(1, keepdim=True)
        return hidden * keep[..., None].to(hidden.dtype)

    @torch.no_grad()
    def encode_optional(self, texts: Sequence[str | None]) -> Tensor:
        """B texts, some None or empty → (B, max_length, dim): those rows all zero (the null
        text), the others ``encode``'s — a training batch mixing captioned and uncaptioned clips."""
        texts = list(texts)
        present = [i for i, t in enumerate(texts) if t]
        dtype = next(self.encoder.parameters()).dtype
        out = torch.zeros(len(texts), self.max_length, self.dim, dtype=dtype, device=self.device)
        if present:
            out[present] = self.encode([texts[i] for i in present])
        return out
