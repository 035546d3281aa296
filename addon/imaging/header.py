"""An image's size from its file header, read before anything decodes a pixel.

A 48 KB PNG can declare 20000 x 20000 pixels; Blender would allocate gigabytes to decode it before any
check of Kiln's could run. So every image an artist gives Kiln (a reference, a file from the browser, a
manifest's image) is measured here first, and refused above `check_size`'s limits.

The formats read are those Blender opens that carry their size in a header: PNG, JPEG, WebP, BMP,
TIFF (and BigTIFF), Targa, Radiance HDR, OpenEXR and DDS. For anything else `read_header` returns None
and Blender decides. Reads are bounded (a few hundred kilobytes at most, whatever the file claims), and
a header that cannot be right (truncated, a zero size, a frame header missing) is a `HeaderError`.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

MAX_SIDE_PX = 16384
"""Longest side Kiln opens (Blender's own texture limit on most GPUs)."""
MAX_DECODED_BYTES = 256 * 2**20
"""What decoding may cost: Blender holds 4 bytes a pixel for 8-bit images, 16 for 16-bit and float ones.
That is 64 megapixels, or 16 for deep images; reference images are cut to 2048 px anyway."""

_SCAN_LIMIT = 512 * 1024
"""Bytes a header walk may skip over (JPEG metadata, TIFF directories, EXR attributes)."""
_MAX_STEPS = 4096
"""Segments, chunks or attributes a walk may visit: a crafted file cannot keep it busy."""


class HeaderError(ValueError):
    """A file in a format Kiln knows, whose header cannot describe a real image."""


class ImageTooLarge(ValueError):
    """An image whose declared size is over Kiln's limits; the message says so, and what to do."""


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int
    deep: bool = False
    """16-bit or float samples: Blender decodes them to a float buffer, 4x the memory of 8-bit."""

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decoded_bytes(self) -> int:
        return self.pixels * (16 if self.deep else 4)


def max_pixels(deep: bool) -> int:
    return MAX_DECODED_BYTES // (16 if deep else 4)


def check_size(header: ImageHeader, max_side: int = MAX_SIDE_PX, max_bytes: int = MAX_DECODED_BYTES) -> None:
    """Raise ImageTooLarge when `header` declares more than Kiln opens."""
    size = f"{header.width} x {header.height} px"
    limit = max_bytes // (16 if header.deep else 4)
    kind = "16-bit and float reference images" if header.deep else "reference images"
    if header.pixels > limit:
        raise ImageTooLarge(f"{size}: larger than Kiln's {_megapixels(limit)} MP limit for {kind}; "
                            "downscale it first")
    if max(header.width, header.height) > max_side:
        raise ImageTooLarge(f"{size}: wider or taller than Kiln's {max_side} px limit for reference images; "
                            "downscale it first")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 2**20:g}"


def check_image(path: str | Path) -> ImageHeader | None:
    """`read_header` then `check_size`: the one call every entry point makes before Blender opens `path`.
    None: a format this module does not read (Blender decides). Raises HeaderError, ImageTooLarge or OSError."""
    header = read_header(path)
    if header is not None:
        check_size(header)
    return header


def read_header(path: str | Path) -> ImageHeader | None:
    """The declared size of the image at `path`, or None if its format is not one read here."""
    with open(path, "rb") as handle:
        head = handle.read(64)
        for signature, reader in _READERS:
            if head.startswith(signature):
                return reader(_Source(handle, head))
        if Path(path).suffix.lower() in (".tga", ".targa"):  # Targa has no signature
            return _tga(_Source(handle, head))
    return None


# --------------------------------------------------------------------------------------- reading
class _Source:
    """Bounded reads at absolute offsets; a short read is a truncated header."""

    def __init__(self, handle: BinaryIO, head: bytes) -> None:
        self.handle = handle
        self.head = head

    def read(self, offset: int, size: int, what: str = "header") -> bytes:
        if offset < 0 or size < 0 or offset + size > _SCAN_LIMIT:
            raise HeaderError(f"its {what} lies beyond where an image header can be")
        if offset + size <= len(self.head):
            return self.head[offset:offset + size]
        self.handle.seek(offset)
        data = self.handle.read(size)
        if len(data) < size:
            raise HeaderError(f"the file ends inside its {what}: it is truncated")
        return data

    def peek(self, offset: int, size: int) -> bytes:
        """Up to `size` bytes at `offset`, fewer at the end of the file."""
        size = min(size, _SCAN_LIMIT - offset)
        if offset < 0 or size <= 0:
            raise HeaderError("its header lies beyond where an image header can be")
        self.handle.seek(offset)
        return self.handle.read(size)

    def unpack(self, fmt: str, offset: int, what: str = "header") -> tuple[Any, ...]:
        return struct.unpack(fmt, self.read(offset, struct.calcsize(fmt), what))


def _sized(fmt: str, width: int, height: int, deep: bool = False) -> ImageHeader:
    if width <= 0 or height <= 0:
        raise HeaderError(f"its header declares {width} x {height} px")
    return ImageHeader(fmt, width, height, deep)


def _png(src: _Source) -> ImageHeader:
    length, kind = src.unpack(">I4s", 8)
    if kind != b"IHDR" or length != 13:
        raise HeaderError("its first chunk is not a PNG image header (IHDR)")
    width, height, depth = src.unpack(">IIB", 16)
    return _sized("PNG", width, height, depth > 8)


_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def _jpeg(src: _Source) -> ImageHeader:
    """The first frame header (SOFn), walking the segments before it by their lengths, so the thumbnail
    inside EXIF metadata (a JPEG of its own) is never mistaken for the image."""
    offset = 2
    for _ in range(_MAX_STEPS):
        (mark,) = src.unpack("B", offset, "segment list")
        if mark != 0xFF:
            raise HeaderError("its segments are not well formed")
        (marker,) = src.unpack("B", offset + 1, "segment list")
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in _JPEG_STANDALONE:
            offset += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header came first
            raise HeaderError("it has no frame header before its image data")
        (length,) = src.unpack(">H", offset + 2, "segment list")
        if length < 2:
            raise HeaderError("a segment declares a length under 2")
        if marker in _JPEG_FRAMES:
            precision, height, width = src.unpack(">BHH", offset + 4, "frame header")
            return _sized("JPEG", width, height, precision > 8)
        offset += 2 + length
    raise HeaderError("too many segments before its frame header")


def _webp(src: _Source) -> ImageHeader:
    """Every size the file declares (the VP8X canvas and each bitstream, animation frames included): a
    small canvas must not hide a large frame."""
    if src.read(8, 4) != b"WEBP":
        raise HeaderError("a RIFF file that is not WebP")
    width = height = 0
    offset = 12
    (riff_size,) = src.unpack("<I", 4)
    for _ in range(_MAX_STEPS):
        if offset + 8 > 8 + riff_size:
            break  # the last chunk
        try:
            kind, size = src.unpack("<4sI", offset, "chunk list")
        except HeaderError:
            if width:
                break  # the sizes are known; the rest of the file is not this module's business
            raise
        body = offset + 8
        found: tuple[int, int] | None = None
        if kind == b"VP8X":
            low, high = src.unpack("<HB", body + 4, "canvas size"), src.unpack("<HB", body + 7, "canvas size")
            found = (low[0] | low[1] << 16) + 1, (high[0] | high[1] << 16) + 1
        elif kind == b"VP8 ":
            if src.read(body + 3, 3, "VP8 frame header") != b"\x9d\x01\x2a":
                raise HeaderError("its VP8 frame header is not well formed")
            w, h = src.unpack("<HH", body + 6, "VP8 frame header")
            found = w & 0x3FFF, h & 0x3FFF
        elif kind == b"VP8L":
            signature, bits = src.unpack("<BI", body, "VP8L header")
            if signature != 0x2F:
                raise HeaderError("its lossless header is not well formed")
            found = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        elif kind == b"ANMF":  # an animation frame: its own size, then its data
            low, high = src.unpack("<HB", body + 6, "frame size"), src.unpack("<HB", body + 9, "frame size")
            found = (low[0] | low[1] << 16) + 1, (high[0] | high[1] << 16) + 1
            size = 16  # its sub-chunks follow
        if found is not None:
            if found[0] <= 0 or found[1] <= 0:
                raise HeaderError(f"its header declares {found[0]} x {found[1]} px")
            width, height = max(width, found[0]), max(height, found[1])
        offset = body + size + (size & 1)
        if offset >= _SCAN_LIMIT:
            break
    if not width:
        raise HeaderError("it declares no image size")
    return _sized("WebP", width, height)


def _bmp(src: _Source) -> ImageHeader:
    (dib,) = src.unpack("<I", 14)
    if dib == 12:  # OS/2 BITMAPCOREHEADER: unsigned 16-bit sizes
        width, height = src.unpack("<HH", 18)
        return _sized("BMP", width, height)
    if dib < 16:
        raise HeaderError(f"its DIB header is {dib} bytes long")
    width, height = src.unpack("<ii", 18)
    return _sized("BMP", width, abs(height))  # a negative height means rows stored top-down


_TIFF_TYPES = {3: "H", 4: "I", 16: "Q"}


def _tiff(src: _Source) -> ImageHeader:
    """Width, length, bits per sample and sample format from the first directory (the page Blender reads)."""
    order = "<" if src.head.startswith(b"II") else ">"
    (version,) = src.unpack(order + "H", 2)
    big = version == 43
    if big:
        (directory,) = src.unpack(order + "Q", 8)
        (count,) = src.unpack(order + "Q", directory, "first directory")
        entry_size, first, field = 20, directory + 8, "Q"
    else:
        (directory,) = src.unpack(order + "I", 4)
        (count,) = src.unpack(order + "H", directory, "first directory")
        entry_size, first, field = 12, directory + 2, "I"
    if count > _MAX_STEPS:
        raise HeaderError(f"its first directory declares {count} entries")
    inline = struct.calcsize(field)
    tags: dict[int, int] = {}
    for number in range(count):
        at = first + number * entry_size
        tag, kind, values = src.unpack(order + "HH" + field, at, "first directory")
        if tag not in (256, 257, 258, 339) or kind not in _TIFF_TYPES or values < 1:
            continue
        item = _TIFF_TYPES[kind]
        value_at = at + 4 + inline
        if values * struct.calcsize(item) > inline:  # the values live elsewhere: the field holds their offset
            (value_at,) = src.unpack(order + field, value_at, "first directory")
        (tags[tag],) = src.unpack(order + item, value_at, "first directory")
    if 256 not in tags or 257 not in tags:
        raise HeaderError("its first directory has no image width or length")
    deep = tags.get(258, 8) > 8 or tags.get(339, 1) == 3  # more than 8 bits, or float samples
    return _sized("TIFF", tags[256], tags[257], deep)


def _tga(src: _Source) -> ImageHeader | None:
    if len(src.head) < 18:
        raise HeaderError("the file ends inside its header: it is truncated")
    kind = src.head[2]
    if kind not in (1, 2, 3, 9, 10, 11):
        return None  # not a Targa image after all: Blender decides
    width, height = src.unpack("<HH", 12)
    return _sized("Targa", width, height)


_HDR_SIZE = re.compile(rb"([-+])([XY]) +([0-9]+) +([-+])([XY]) +([0-9]+)")


def _hdr(src: _Source) -> ImageHeader:
    """Radiance: text lines, an empty line, then the resolution line, e.g. `-Y 512 +X 768`."""
    size = 0
    text = b""
    while b"\n\n" not in text and size < 64 * 1024:
        size = min(64 * 1024, size + 4096)
        src.handle.seek(0)
        text = src.handle.read(size)
        if len(text) < size:
            break
    if b"\n\n" not in text:
        raise HeaderError("its header never ends")
    line = text.split(b"\n\n", 1)[1].split(b"\n", 1)[0].strip()
    found = _HDR_SIZE.fullmatch(line)
    if found is None or found.group(2) == found.group(5):
        raise HeaderError("its resolution line is not well formed")
    first, second = int(found.group(3)), int(found.group(6))
    width, height = (second, first) if found.group(2) == b"Y" else (first, second)
    return _sized("Radiance HDR", width, height, deep=True)


def _exr(src: _Source) -> ImageHeader:
    """OpenEXR: the `dataWindow` of each part (box2i: xMin, yMin, xMax, yMax), the largest counting."""
    (version,) = src.unpack("<I", 4)
    multipart = bool(version & 0x1000)
    offset = 8
    width = height = 0
    for _ in range(_MAX_STEPS):
        name = _c_string(src, offset)
        offset += len(name) + 1
        if not name:  # the end of a header
            if not multipart or not width:
                break
            if _c_string(src, offset) == b"":  # an empty header: the end of the headers
                break
            continue
        kind = _c_string(src, offset)
        offset += len(kind) + 1
        (size,) = src.unpack("<i", offset, "attributes")
        offset += 4
        if size < 0:
            raise HeaderError("an attribute declares a negative size")
        if name == b"dataWindow" and kind == b"box2i" and size == 16:
            x0, y0, x1, y1 = src.unpack("<iiii", offset, "data window")
            found = _sized("OpenEXR", x1 - x0 + 1, y1 - y0 + 1, deep=True)
            width, height = max(width, found.width), max(height, found.height)
        offset += size
    if not width:
        raise HeaderError("it has no data window")
    return ImageHeader("OpenEXR", width, height, deep=True)


def _c_string(src: _Source, offset: int) -> bytes:
    """A NUL-terminated attribute name or type (at most 255 bytes, as the format allows)."""
    data = src.peek(offset, 256)
    end = data.find(b"\x00")
    if end < 0:
        raise HeaderError("the file ends inside its attributes: it is truncated" if len(data) < 256 else
                          "an attribute name is not terminated")
    return data[:end]


def _dds(src: _Source) -> ImageHeader:
    height, width = src.unpack("<II", 12)
    return _sized("DDS", width, height)


_READERS = (
    (b"\x89PNG\r\n\x1a\n", _png),
    (b"\xff\xd8\xff", _jpeg),
    (b"RIFF", _webp),
    (b"BM", _bmp),
    (b"II*\x00", _tiff), (b"MM\x00*", _tiff), (b"II+\x00", _tiff), (b"MM\x00+", _tiff),
    (b"#?RADIANCE", _hdr), (b"#?RGBE", _hdr),
    (b"v/1\x01", _exr),
    (b"DDS ", _dds),
)
