"""A pipeline's files: what ``Any4DPipeline.from_pretrained`` reads — our pipeline directory,
a training checkpoint, a Wan2.1 diffusers directory — and what ``save_pretrained`` writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from any4d.io import atomic_path, read_json_object
from any4d.model import Any4DTransformer

PIPELINE_FILE = "pipeline.json"
FORMAT = "any4d.pipeline"
# The clip shape of a Wan2.1 diffusers directory (the paper's training clips).
WAN_DEFAULTS = {"num_frames": 49, "height": 240, "width": 320}


def load_parts(directory: Path, ema: bool, device) -> tuple[Any4DTransformer, Any, dict]:
    """(model, tokenizer, defaults) of a directory in any of ``from_pretrained``'s layouts."""
    from any4d.tokenize import WanVAETokenizer, build_tokenizer

    if (directory / PIPELINE_FILE).is_file():
        meta = read_json_object(directory / PIPELINE_FILE)
        if meta.get("format") != FORMAT:
            raise ValueError(f"{directory / PIPELINE_FILE} is not an any4d pipeline file")
        spec = dict(meta["tokenizer"])
        if "path" in spec:  # a VAE saved beside the pipeline
            spec["vae_path"] = directory / spec.pop("path")
        tokenizer = build_tokenizer(spec.pop("kind", None), **spec, device=device)
        model = Any4DTransformer.from_pretrained(directory / "model", device=device)
        return model, tokenizer, dict(meta.get("defaults") or {})
    if (directory / "trainer.json").is_file():
        meta = read_json_object(directory / "trainer.json")
        config = meta["config"]
        spec = dict(config["tokenizer"])
        vae = spec.get("vae_path")
        if spec.get("kind") == "wan_vae" and vae and not Path(vae).exists():
            raise FileNotFoundError(
                f"{directory} was trained with the Wan VAE at {vae}, which does not exist "
                "here: copy it there, or save the pipeline with save_pretrained (it holds "
                "its VAE) where it does"
            )
        tokenizer = build_tokenizer(spec.pop("kind"), **spec, device=device)
        model = Any4DTransformer.from_pretrained(directory / "model", device=device)
        if ema and (directory / "ema.safetensors").is_file():
            from safetensors.torch import load_file

            state = load_file(directory / "ema.safetensors")
            model.load_state_dict({k: v.to(device) for k, v in state.items()}, strict=True)
        return model, tokenizer, trained_clip(directory, meta)
    if (directory / "transformer").is_dir() and (directory / "vae").is_dir():
        model = Any4DTransformer.from_wan(directory / "transformer", device=device)
        tokenizer = WanVAETokenizer.from_pretrained(directory / "vae", device=device)
        return model, tokenizer, dict(WAN_DEFAULTS)
    raise _not_a_pipeline(directory)


def write_pipeline(
    directory: str | Path,
    model: Any4DTransformer,
    tokenizer,
    defaults: dict,
    recorded: dict | None = None,
) -> Path:
    """``pipeline.json`` + ``model/`` (+ ``vae/`` for the Wan VAE tokenizer) in ``directory``;
    ``recorded``: more entries of ``pipeline.json``, e.g. the text encoder's absolute path
    (umT5-XXL is ~11 GB: referred to, not copied)."""
    from any4d.tokenize import PixelTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(tokenizer, PixelTokenizer):
        spec = {"kind": "pixel", "stride": tokenizer.spatial_stride}
    else:
        tokenizer.vae.save_pretrained(directory / "vae")
        spec = {"kind": "wan_vae", "path": "vae"}
    spec["stream_scales"] = dict(tokenizer.stream_scales)
    model.save_pretrained(directory / "model")
    meta = {"format": FORMAT, "tokenizer": spec, "defaults": defaults, **(recorded or {})}
    with atomic_path(directory / PIPELINE_FILE) as temporary:
        temporary.write_text(json.dumps(meta, indent=2))
    return directory


def read_defaults(directory: str | Path) -> dict[str, Any]:
    """The defaults (clip shape, sampler settings) of a pipeline directory, read from its small
    metadata files without loading any weights (for checks before a run)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"pipeline directory {directory} does not exist")
    if (directory / PIPELINE_FILE).is_file():
        return dict(read_json_object(directory / PIPELINE_FILE).get("defaults") or {})
    if (directory / "trainer.json").is_file():
        return trained_clip(directory, read_json_object(directory / "trainer.json"))
    if (directory / "transformer").is_dir() and (directory / "vae").is_dir():
        return dict(WAN_DEFAULTS)
    raise _not_a_pipeline(directory)


def recorded_text_encoder(directory: Path) -> str | Path | None:
    """The text encoder a pipeline directory names: a training checkpoint's
    ``model.text_encoder``, a saved pipeline's ``text_encoder``, a Wan directory's own
    ``text_encoder/`` + ``tokenizer/``; None if it names none. A named one that is gone is an
    error (the model was trained to read captions)."""
    recorded, where = None, None
    if (directory / PIPELINE_FILE).is_file():
        recorded = read_json_object(directory / PIPELINE_FILE).get("text_encoder")
        where = directory / PIPELINE_FILE
    elif (directory / "trainer.json").is_file():
        config = read_json_object(directory / "trainer.json").get("config") or {}
        recorded = (config.get("model") or {}).get("text_encoder")
        where = directory / "trainer.json"
    elif (directory / "transformer").is_dir():
        has_text = all((directory / n).is_dir() for n in ("text_encoder", "tokenizer"))
        return directory if has_text else None
    if recorded is None:
        return None
    if not Path(recorded).is_dir():
        raise FileNotFoundError(
            f"{where} names the text encoder {recorded}, which does not exist here: pass "
            "text_encoder=DIR (any4d: --text-encoder DIR) with umT5's text_encoder/ + "
            "tokenizer/, or text_encoder=False to run without captions"
        )
    return recorded


def trained_clip(directory: Path, meta: dict) -> dict[str, Any]:
    """The defaults of a training checkpoint: the clip shape the run trained on (recorded in
    ``trainer.json`` since it was; else derived from its config — for a mixture, its file's
    clip settings) and ``clip_source``, where that shape came from."""
    clip = (meta.get("trainer") or {}).get("clip")
    if clip is None:
        from any4d.train.config import config_from_dict

        data = config_from_dict(meta["config"]).data
        try:
            clip = data.clip_shape()
        except FileNotFoundError as error:
            raise ValueError(
                f"{directory} was trained on the mixture {data.mixture}, which is not found "
                f"({error}), and its trainer.json does not record the clip shape: run from the "
                "directory the training ran in"
            ) from None
    defaults = {k: clip[k] for k in ("num_frames", "height", "width", "fps")}
    return {**defaults, "clip_source": f"{directory / 'trainer.json'}: {clip['source']}"}


def _not_a_pipeline(directory: Path) -> ValueError:
    return ValueError(
        f"{directory} is not a pipeline: expected {PIPELINE_FILE} + model/, a training "
        "checkpoint (trainer.json + model/), or a Wan2.1 diffusers directory "
        "(transformer/ + vae/)"
    )
