"""Minimal PNG writing (and reading back what we write) with numpy and zlib, usable from worker threads.

Blender's image API is main-thread only, so textures and previews made by the local engine in a
worker are encoded here. Rows use PNG's "Up" filter, which numpy computes in one step and which
compresses photos and flat renders well.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {1: 0, 3: 2, 4: 6}  # channels → PNG colour type (grey, RGB, RGBA)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def encode_png(pixels: npt.NDArray[np.uint8], level: int = 3) -> bytes:
    """Encode an (H, W), (H, W, 3) or (H, W, 4) uint8 array, top row first."""
    if pixels.dtype != np.uint8:
        raise TypeError("encode_png expects uint8 pixels")
    image = pixels[:, :, None] if pixels.ndim == 2 else pixels
    height, width, channels = image.shape
    rows = image.reshape(height, width * channels)
    up = np.empty_like(rows)
    up[0] = rows[0]
    up[1:] = rows[1:] - rows[:-1]  # uint8 arithmetic wraps modulo 256, as the filter requires
    filtered = np.concatenate([np.full((height, 1), 2, np.uint8), up], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPES[channels], 0, 0, 0)
    return b"".join([
        _SIGNATURE,
        _chunk(b"IHDR", header),
        _chunk(b"IDAT", zlib.compress(filtered.tobytes(), level)),
        _chunk(b"IEND", b""),
    ])


def decode_own_png(data: bytes) -> npt.NDArray[np.uint8]:
    """Decode a PNG written by `encode_png` (8-bit, filters None/Up only). Not a general decoder."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG file")
    offset = len(_SIGNATURE)
    idat = b""
    width = height = channels = 0
    while offset < len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        kind = data[offset + 4 : offset + 8]
        payload = data[offset + 8 : offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            width, height, depth, color_type = struct.unpack_from(">IIBB", payload)
            channels = {v: k for k, v in _COLOR_TYPES.items()}[color_type]
            if depth != 8:
                raise ValueError("only 8-bit PNGs are supported")
        elif kind == b"IDAT":
            idat += payload
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * channels)
    filters, rows = raw[:, 0], raw[:, 1:].copy()
    if not set(np.unique(filters)) <= {0, 2}:
        raise ValueError("PNG uses filters this reader does not handle")
    for y in range(1, height):
        if filters[y] == 2:
            rows[y] = rows[y] + rows[y - 1]
    return rows.reshape(height, width, channels)
