"""Image sizes read from file headers before anything decodes (issue 12, item 10), on crafted files:
real headers, truncated ones, zero sizes, and headers that try to hide a large image behind a small one.
(tests/blender/test_image_limits.py checks the same reader against files Blender itself writes.)"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from addon.imaging.header import (
    MAX_SIDE_PX,
    HeaderError,
    ImageHeader,
    ImageTooLarge,
    check_image,
    check_size,
    max_pixels,
    read_header,
)
from addon.imaging.png import encode_png


def chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(side: int = 20000) -> bytes:
    """A 1-bit grey PNG declaring side x side px: its rows of zeros compress about 1000:1."""
    row = b"\x00" * (1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def png(width: int, height: int, depth: int = 8, color: int = 6) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0))


def jpeg(width: int, height: int, *, precision: int = 8, before: bytes = b"") -> bytes:
    sof = struct.pack(">BHHB", precision, height, width, 3) + b"\x01\x22\x00" * 3
    return b"\xff\xd8" + before + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xda\x00\x02"


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def riff(*chunks: bytes) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")


def vp8(width: int, height: int) -> bytes:
    return webp_chunk(b"VP8 ", b"\x10\x02\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 8)


def vp8l(width: int, height: int) -> bytes:
    bits = (width - 1) | (height - 1) << 14 | 1 << 28
    return webp_chunk(b"VP8L", b"\x2f" + struct.pack("<I", bits) + b"\x00" * 4)


def vp8x(width: int, height: int) -> bytes:
    w, h = width - 1, height - 1
    return webp_chunk(b"VP8X", b"\x10\x00\x00\x00" + bytes([w & 255, w >> 8 & 255, w >> 16, h & 255, h >> 8 & 255,
                                                             h >> 16]))


def bmp(width: int, height: int, dib: int = 40) -> bytes:
    if dib == 12:
        info = struct.pack("<IHHHH", 12, width, height, 1, 24)
    else:
        info = struct.pack("<IiiHHI", dib, width, height, 1, 24, 0) + b"\x00" * (dib - 20)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def tiff(width: int, height: int, *, order: str = "<", bits: tuple[int, ...] = (8, 8, 8), float_: bool = False,
         big: bool = False) -> bytes:
    """A first directory with width, length, bits per sample (inline or, for 3 values, at an offset) and
    the sample format."""
    entries: list[tuple[int, int, int, int]] = [(256, 4, 1, width), (257, 3 if height < 65536 else 4, 1, height)]
    extra = b""
    field = "Q" if big else "I"
    inline = struct.calcsize(field)
    head = 16 if big else 8
    count_size = 8 if big else 2
    entry_size = 20 if big else 12
    n = 4 if float_ else 3
    directory_end = head + count_size + n * entry_size + inline
    if len(bits) * 2 > inline:
        entries.append((258, 3, len(bits), directory_end))
        extra = struct.pack(order + "H" * len(bits), *bits)
    else:
        entries.append((258, 3, len(bits), bits[0]))
    if float_:
        entries.append((339, 3, 1, 3))
    body = b""
    for tag, kind, count, value in entries:
        if kind == 3 and count == 1:
            value_bytes = struct.pack(order + "H", value).ljust(inline, b"\x00")
        else:
            value_bytes = struct.pack(order + field, value)
        body += struct.pack(order + "HH" + field, tag, kind, count) + value_bytes
    magic = (b"II" if order == "<" else b"MM")
    if big:
        start = magic + struct.pack(order + "HHHQ", 43, 8, 0, head)
        directory = struct.pack(order + "Q", n) + body + struct.pack(order + "Q", 0)
    else:
        start = magic + struct.pack(order + "HI", 42, head)
        directory = struct.pack(order + "H", n) + body + struct.pack(order + "I", 0)
    return start + directory + extra


def exr(width: int, height: int, x0: int = 0, y0: int = 0) -> bytes:
    def attribute(name: bytes, kind: bytes, value: bytes) -> bytes:
        return name + b"\x00" + kind + b"\x00" + struct.pack("<i", len(value)) + value

    window = struct.pack("<iiii", x0, y0, x0 + width - 1, y0 + height - 1)
    return (b"v/1\x01" + struct.pack("<I", 2) + attribute(b"channels", b"chlist", b"R\x00" + b"\x00" * 16 + b"\x00")
            + attribute(b"compression", b"compression", b"\x00") + attribute(b"dataWindow", b"box2i", window)
            + attribute(b"displayWindow", b"box2i", window) + b"\x00")


def write(tmp_path: Path, data: bytes, name: str = "image") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------------------- sizes
@pytest.mark.parametrize(("data", "expected"), [
    (png(37, 23), ImageHeader("PNG", 37, 23)),
    (png(37, 23, depth=16), ImageHeader("PNG", 37, 23, deep=True)),
    (jpeg(640, 480), ImageHeader("JPEG", 640, 480)),
    (jpeg(640, 480, precision=12), ImageHeader("JPEG", 640, 480, deep=True)),
    (riff(vp8(300, 200)), ImageHeader("WebP", 300, 200)),
    (riff(vp8l(300, 200)), ImageHeader("WebP", 300, 200)),
    (riff(vp8x(300, 200), vp8l(300, 200)), ImageHeader("WebP", 300, 200)),
    (bmp(64, 32), ImageHeader("BMP", 64, 32)),
    (bmp(64, -32, dib=124), ImageHeader("BMP", 64, 32)),  # top-down rows
    (bmp(64, 32, dib=12), ImageHeader("BMP", 64, 32)),
    (tiff(70, 50), ImageHeader("TIFF", 70, 50)),
    (tiff(70, 50, order=">"), ImageHeader("TIFF", 70, 50)),
    (tiff(70, 50, bits=(16, 16, 16)), ImageHeader("TIFF", 70, 50, deep=True)),
    (tiff(70, 50, bits=(32,), float_=True), ImageHeader("TIFF", 70, 50, deep=True)),
    (tiff(70, 100000, big=True), ImageHeader("TIFF", 70, 100000)),
    (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 48 +X 96\n" + b"\x00" * 8, ImageHeader("Radiance HDR", 96, 48, True)),
    (exr(33, 17, x0=-5, y0=10), ImageHeader("OpenEXR", 33, 17, deep=True)),
    (b"DDS " + struct.pack("<IIII", 124, 0, 40, 80) + b"\x00" * 120, ImageHeader("DDS", 80, 40)),
])
def test_sizes_come_from_the_header(tmp_path: Path, data: bytes, expected: ImageHeader) -> None:
    assert read_header(write(tmp_path, data)) == expected


def test_a_targa_is_known_by_its_name(tmp_path: Path) -> None:
    header = struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, 120, 90, 32, 8)
    assert read_header(write(tmp_path, header, "ref.tga")) == ImageHeader("Targa", 120, 90)
    assert read_header(write(tmp_path, header, "ref.bin")) is None
    assert read_header(write(tmp_path, b"\x00\x00\x07" + header[3:], "odd.tga")) is None, "not a Targa after all"


def test_kilns_own_pngs_read_back(tmp_path: Path) -> None:
    pixels = np.zeros((19, 41, 4), np.uint8)
    assert read_header(write(tmp_path, encode_png(pixels))) == ImageHeader("PNG", 41, 19)


def test_unknown_formats_are_left_to_blender(tmp_path: Path) -> None:
    for data in (b"just some text", b"", b"GIF89a" + b"\x00" * 20, b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        assert read_header(write(tmp_path, data)) is None


# ------------------------------------------------------------------------------------- limits
def test_the_bomb_is_measured_from_48_kilobytes(tmp_path: Path) -> None:
    path = write(tmp_path, png_bomb(), "bomb.png")
    assert path.stat().st_size < 64 * 1024
    assert read_header(path) == ImageHeader("PNG", 20000, 20000)
    with pytest.raises(ImageTooLarge) as refused:
        check_image(path)
    assert str(refused.value) == ("20000 x 20000 px: larger than Kiln's 64 MP limit for reference images; "
                                  "downscale it first")


def test_limits_are_by_side_and_by_decoded_memory() -> None:
    check_size(ImageHeader("PNG", 8192, 8192))  # an 8K texture: 64 MP exactly
    check_size(ImageHeader("PNG", MAX_SIDE_PX, 4096))
    with pytest.raises(ImageTooLarge, match=r"8193 x 8192 px: larger than Kiln's 64 MP limit"):
        check_size(ImageHeader("PNG", 8193, 8192))
    with pytest.raises(ImageTooLarge, match=r"16385 x 16 px: wider or taller than Kiln's 16384 px limit"):
        check_size(ImageHeader("PNG", MAX_SIDE_PX + 1, 16))
    check_size(ImageHeader("EXR", 4096, 4096, deep=True))
    with pytest.raises(ImageTooLarge, match=r"16 MP limit for 16-bit and float reference images"):
        check_size(ImageHeader("EXR", 8192, 4096, deep=True))
    assert max_pixels(False) == 64 * 2**20 and max_pixels(True) == 16 * 2**20


@pytest.mark.parametrize("data", [
    jpeg(65535, 65535),
    riff(vp8x(16777216, 16777216), vp8(16, 16)),
    riff(vp8x(16, 16), vp8l(16384, 16384)),  # a small canvas hiding a large bitstream
    riff(vp8x(16, 16), webp_chunk(b"ANMF", b"\x00" * 6 + bytes([0xFF, 0x3F, 0, 0xFF, 0x3F, 0]) + b"\x00" * 4)),
    bmp(30000, -30000),
    tiff(100000, 100000, big=True),
    exr(20000, 20000, x0=-10000),
    jpeg(20000, 20000, before=segment(0xE1, b"Exif\x00\x00" + jpeg(16, 16))),  # a small EXIF thumbnail first
])
def test_every_format_is_held_to_the_limit(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(ImageTooLarge):
        check_image(write(tmp_path, data))


def test_an_exif_thumbnail_is_not_the_image(tmp_path: Path) -> None:
    thumbnail = segment(0xE1, b"Exif\x00\x00" + jpeg(20000, 20000))
    assert read_header(write(tmp_path, jpeg(64, 48, before=thumbnail))) == ImageHeader("JPEG", 64, 48)


# -------------------------------------------------------------------------------- broken headers
@pytest.mark.parametrize(("data", "why"), [
    (png(37, 23)[:20], "truncated"),
    (b"\x89PNG\r\n\x1a\n", "truncated"),
    (png(0, 23), "declares 0 x 23 px"),
    (png(37, 0), "declares 37 x 0 px"),
    (b"\x89PNG\r\n\x1a\n" + chunk(b"IDAT", b"\x00" * 13), "not a PNG image header"),
    (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", b"\x00" * 20), "not a PNG image header"),  # a lying length
    (jpeg(640, 0), "declares 640 x 0 px"),
    (jpeg(640, 480)[:9], "truncated"),
    (b"\xff\xd8\xff\xda\x00\x02", "no frame header"),
    (b"\xff\xd8\xff\xe0\x00\x01", "length under 2"),
    (b"\xff\xd8\xff\xe0\x00\x10" + b"\x00" * 14 + b"\x12\x34", "not well formed"),
    (b"\xff\xd8" + segment(0xE0, b"\x00" * 60000) * 10, "beyond"),  # metadata past any header's reach
    (riff(vp8(0, 200)), "declares 0 x 200 px"),
    (riff(webp_chunk(b"VP8 ", b"\x00" * 16)), "VP8 frame header"),
    (riff(webp_chunk(b"VP8L", b"\x00" * 8)), "lossless header"),
    (riff(webp_chunk(b"EXIF", b"\x00" * 8)), "no image size"),
    (b"RIFF\x10\x00\x00\x00WAVEfmt ", "not WebP"),
    (bmp(0, 32), "declares 0 x 32 px"),
    (bmp(64, 32)[:20], "truncated"),
    (b"BM" + b"\x00" * 12 + struct.pack("<I", 8) + b"\x00" * 20, "DIB header is 8 bytes"),
    (tiff(70, 50)[:30], "truncated"),
    (b"II*\x00" + struct.pack("<I", 2**31), "beyond"),
    (b"II*\x00" + struct.pack("<IH", 8, 0), "no image width or length"),
    (b"II*\x00" + struct.pack("<IH", 8, 60000), "60000 entries"),
    (tiff(0, 50), "declares 0 x 50 px"),
    (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 48 -Y 96\n", "resolution line"),
    (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n", "never ends"),
    (exr(0, 5), "declares 0 x 5 px"),
    (exr(33, 17)[:40], "truncated"),
    (b"v/1\x01" + struct.pack("<I", 2) + b"\x00", "no data window"),
    (b"DDS " + b"\x00" * 4, "truncated"),
    (b"DDS " + struct.pack("<IIII", 124, 0, 0, 80), "declares 80 x 0 px"),
])
def test_broken_headers_are_refused_with_the_reason(tmp_path: Path, data: bytes, why: str) -> None:
    with pytest.raises(HeaderError, match=why):
        read_header(write(tmp_path, data))


def test_headers_declaring_impossible_sizes_never_raise_anything_else(tmp_path: Path) -> None:
    """Random bytes after each signature: a HeaderError, a size, or None; never a crash or a hang."""
    rng = np.random.default_rng(12)
    signatures = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\x00\x00\x00\x00WEBP", b"BM", b"II*\x00",
                  b"MM\x00*", b"II+\x00", b"#?RADIANCE\n", b"v/1\x01", b"DDS "]
    for number in range(400):
        signature = signatures[number % len(signatures)]
        data = signature + rng.integers(0, 256, int(rng.integers(0, 200)), dtype=np.uint8).tobytes()
        try:
            header = read_header(write(tmp_path, data))
        except HeaderError:
            continue
        assert header is None or (header.width > 0 and header.height > 0)
