"""Decoding of images and videos: bit depths, alpha, and forward streaming of video frames."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from any4d.data.readers.decode import (
    VideoDecoder,
    image_size,
    read_rgb,
    read_uint16_png,
    read_video_frames,
    video_size,
)
from tests.data.readers.fixtures import rgb_uint8, truth, write_video


def write_png_by_hand(path, array: np.ndarray, color_type: int) -> None:
    """A non-interlaced PNG of (H, W[, C]) uint16 codes, written without Pillow (which cannot
    write 16-bit colour): color_type 0 grey, 2 RGB; filter 0 on every row."""
    height, width = array.shape[:2]
    rows = array.astype(">u2").reshape(height, -1).tobytes()
    stride = len(rows) // height
    raw = b"".join(b"\0" + rows[r * stride : (r + 1) * stride] for r in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def codes(shape, high: int, seed: int = 0) -> np.ndarray:
    """Random codes in [0, high] with both ends present."""
    array = np.random.default_rng(seed).integers(0, high + 1, size=shape)
    array.flat[0], array.flat[1] = 0, high
    return array


def test_16bit_grey_png_is_read_from_its_own_bit_depth(tmp_path):
    grey = codes((6, 7), 65535).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey16.png")  # mode "I;16"
    rgb = read_rgb(tmp_path / "grey16.png")
    expected = torch.from_numpy(grey / 32767.5 - 1).float().expand(3, 6, 7)
    assert rgb.shape == (3, 6, 7) and rgb.dtype == torch.float32
    assert torch.allclose(rgb, expected, atol=1e-6) and rgb.min() == -1 and rgb.max() == 1


def test_16bit_rgb_png_is_read_to_8bit_precision(tmp_path):
    colour = codes((6, 7, 3), 65535)
    write_png_by_hand(tmp_path / "rgb16.png", colour, color_type=2)
    rgb = read_rgb(tmp_path / "rgb16.png")
    expected = torch.from_numpy(colour / 32767.5 - 1).float().permute(2, 0, 1)
    assert rgb.shape == (3, 6, 7)
    assert (rgb - expected).abs().max() <= 1 / 127.5 + 1e-6  # one 8-bit step


def test_8bit_grey_png_is_replicated_to_three_channels(tmp_path):
    grey = codes((6, 7), 255).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey8.png")
    expected = torch.from_numpy(grey / 127.5 - 1).float().expand(3, 6, 7)
    assert torch.allclose(read_rgb(tmp_path / "grey8.png"), expected, atol=1e-6)


def test_rgba_png_drops_alpha(tmp_path):
    rgba = codes((6, 7, 4), 255).astype(np.uint8)
    rgba[..., 3] = 0  # transparent: the colour must survive untouched
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    expected = torch.from_numpy(rgba[..., :3] / 127.5 - 1).float().permute(2, 0, 1)
    assert torch.allclose(read_rgb(tmp_path / "rgba.png"), expected, atol=1e-6)


def test_read_uint16_png_refuses_an_8bit_png(tmp_path):
    Image.fromarray(np.full((4, 5), 9, np.uint8)).save(tmp_path / "depth8.png")
    with pytest.raises(ValueError, match=r"depth8.png: is an 8-bit PNG \(Pillow mode L\)"):
        read_uint16_png(tmp_path / "depth8.png")


def test_sizes_come_from_the_headers(tmp_path):
    Image.fromarray(np.zeros((6, 7, 3), np.uint8)).save(tmp_path / "frame.png")
    video = write_video(tmp_path / "clip.mp4", rgb_uint8(truth(8)))
    assert image_size(tmp_path / "frame.png") == (6, 7)
    assert video_size(video) == (32, 48)


@pytest.fixture
def counted_opens(monkeypatch):
    """The paths ``av.open`` was called with, from here on."""
    import av

    opened, real_open = [], av.open
    monkeypatch.setattr(
        av, "open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k)
    )
    return opened


def test_video_decoder_decodes_forward_through_one_container(tmp_path, counted_opens):
    video = write_video(tmp_path / "clip.mp4", rgb_uint8(truth(8)))
    every = read_video_frames(video, range(5))  # (5, 3, H, W)
    counted_opens.clear()
    with VideoDecoder(video) as decoder:
        windows = [[0, 1, 2], [2, 3], [4, 4, 3]]  # the last frame decoded may come again
        frames = [decoder.frames(w) for w in windows]
        assert len(counted_opens) == 1
    for window, rgb in zip(windows, frames, strict=True):
        assert rgb.shape == (len(window), 3, 32, 48) and torch.equal(rgb, every[window])


def test_video_decoder_starts_over_for_an_earlier_frame(tmp_path, counted_opens):
    video = write_video(tmp_path / "clip.mp4", rgb_uint8(truth(8)))
    every = read_video_frames(video, range(5))
    counted_opens.clear()
    with VideoDecoder(video) as decoder:
        assert torch.equal(decoder.frames([3, 4]), every[3:])
        assert torch.equal(decoder.frames([1]), every[[1]])  # before frame 4: reopens
        assert torch.equal(decoder.frames([2, 4]), every[[2, 4]])
    assert len(counted_opens) == 2


def test_video_decoder_names_the_file_past_the_last_frame(tmp_path):
    video = write_video(tmp_path / "clip.mp4", rgb_uint8(truth(8)))
    with (
        VideoDecoder(video) as decoder,
        pytest.raises(ValueError, match=r"clip.mp4: has only 5 frames \(expected at least 8\)"),
    ):
        decoder.frames([2, 7])
