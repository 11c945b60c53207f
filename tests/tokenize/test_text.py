"""The umT5 text encoder: prompt features equal diffusers' WanPipeline's; local files only."""

from __future__ import annotations

import pytest
import torch
import transformers  # the optional [text] extra; [dev] has it

from any4d.tokenize.text import TextEncoder, clean_prompt

PROMPTS = ["a red cube on a table", "two   blue spheres &amp; a\n kitchen window"]


def tiny_umt5(directory):
    """A 2-layer umT5 and a Unigram tokenizer trained in memory, saved as diffusers lays them out
    (``text_encoder/``, ``tokenizer/``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=64, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"
    )
    tokenizer.train_from_iterator(PROMPTS * 4 + ["the camera walks to the window"], trainer)
    eos = tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", eos)]
    )
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    fast.save_pretrained(directory / "tokenizer")
    torch.manual_seed(0)
    config = transformers.UMT5Config(
        vocab_size=64,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
    )
    encoder = transformers.UMT5EncoderModel(config).eval()
    encoder.save_pretrained(directory / "text_encoder")
    return encoder, fast


def test_features_equal_diffusers_wan_pipeline(tmp_path):
    from diffusers import WanPipeline

    encoder, tokenizer = tiny_umt5(tmp_path)
    ours = TextEncoder.from_pretrained(tmp_path, max_length=24)
    assert ours.dim == 32
    features = ours.encode(PROMPTS)
    reference = WanPipeline(tokenizer=tokenizer, text_encoder=encoder, vae=None, scheduler=None)
    expected = reference._get_t5_prompt_embeds(
        PROMPTS, max_sequence_length=24, device=torch.device("cpu")
    )
    assert features.shape == (2, 24, 32)
    torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-5)  # reloaded from disk
    # Past each prompt's tokens the rows are zero (the transformer's "no text"), before not.
    lengths = [len(tokenizer(clean_prompt(p)).input_ids) for p in PROMPTS]
    for row, length in zip(features, lengths, strict=True):
        assert row[length:].abs().sum() == 0 and (row[:length].abs().sum(-1) > 0).all()
    assert torch.equal(ours.encode(PROMPTS[0]), features[:1])


def test_clean_prompt_matches_wan():
    assert clean_prompt("  two   blue &amp;amp; spheres\n") == "two blue & spheres"


def test_missing_folders_and_bad_prompts_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="text_encoder does not exist"):
        TextEncoder.from_pretrained(tmp_path)
    tiny_umt5(tmp_path)
    with pytest.raises(FileNotFoundError, match="tokenizer does not exist"):
        import shutil

        shutil.rmtree(tmp_path / "tokenizer")
        TextEncoder.from_pretrained(tmp_path)
    encoder, tokenizer = tiny_umt5(tmp_path)
    text = TextEncoder(encoder, tokenizer, max_length=8)
    with pytest.raises(ValueError, match="prompts must be a string or a non-empty list of strings"):
        text.encode([])
    with pytest.raises(ValueError, match="max_length=0"):
        TextEncoder(encoder, tokenizer, max_length=0)


def test_the_original_release_layout_loads_to_the_same_features(tmp_path):
    """``models_t5_umt5-xxl-enc-bf16.pth`` names (WAN.md §5's table, measured there against the
    original ``wan/modules/t5.py``), written from a transformers model, load back equal."""
    from any4d.tokenize.text import _ORIGINAL_BLOCK_KEYS

    encoder, _ = tiny_umt5(tmp_path)
    state = encoder.state_dict()
    original = {
        "token_embedding.weight": state["shared.weight"],
        "norm.weight": state["encoder.final_layer_norm.weight"],
    }
    for index in range(encoder.config.num_layers):
        for ours, theirs in _ORIGINAL_BLOCK_KEYS.items():
            original[f"blocks.{index}.{ours}"] = state[f"encoder.block.{index}.{theirs}"]
    torch.save(original, tmp_path / "umt5.pth")
    # relative_attention_max_distance is fixed (128) in the original: match it here.
    encoder.config.relative_attention_max_distance = 128
    for block in encoder.encoder.block:
        block.layer[0].SelfAttention.relative_attention_max_distance = 128
    loaded = TextEncoder.from_original(tmp_path / "umt5.pth", tmp_path / "tokenizer", max_length=24)
    direct = TextEncoder(encoder, loaded.tokenizer, max_length=24)
    torch.testing.assert_close(loaded.encode(PROMPTS), direct.encode(PROMPTS), rtol=0, atol=0)
    with pytest.raises(ValueError, match="not an original umT5 state dict"):
        torch.save({"x": torch.zeros(1)}, tmp_path / "bad.pth")
        TextEncoder.from_original(tmp_path / "bad.pth", tmp_path / "tokenizer")
    with pytest.raises(FileNotFoundError, match="umT5 checkpoint .* does not exist"):
        TextEncoder.from_original(tmp_path / "none.pth", tmp_path / "tokenizer")
