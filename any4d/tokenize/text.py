"""Text conditioning: umT5 prompt embeddings exactly as Wan2.1 computes them (WAN.md §5).

    text = TextEncoder.from_pretrained("Wan2.1-T2V-1.3B-Diffusers")   # text_encoder/ + tokenizer/
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
        try:
            from transformers import AutoTokenizer, UMT5EncoderModel
        except ImportError as error:
            raise ImportError(
                "the umT5 text encoder needs transformers: pip install 'any4d[text]'"
            ) from error
        directory = Path(directory)
        for name in (ENCODER_DIR, TOKENIZER_DIR):
            if not (directory / name).is_dir():
                raise FileNotFoundError(
                    f"{directory / name} does not exist (expected a diffusers Wan2.1 directory "
                    f"with {ENCODER_DIR}/ and {TOKENIZER_DIR}/)"
                )
        encoder = UMT5EncoderModel.from_pretrained(
            directory / ENCODER_DIR, local_files_only=True, use_safetensors=True, dtype=dtype
        )
        tokenizer = AutoTokenizer.from_pretrained(directory / TOKENIZER_DIR, local_files_only=True)
        return cls(encoder.to(device), tokenizer, max_length)

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
