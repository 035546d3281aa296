"""Images too large to decode are refused from their header, before Blender allocates anything (issue 12,
item 10): a 48 KB PNG declaring 20000 x 20000 px, through every way an image reaches Kiln, in a real
Blender whose peak memory is measured. And the header reader agrees with the files Blender itself writes."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ADDON_MODULE

REPO = Path(__file__).resolve().parents[2]
PEAK_RSS_LIMIT = 1024**3
"""The issue's ceiling: a refused image must not cost more than this (decoding the bomb took 2 GB)."""


def engine(name: str) -> ModuleType:
    return sys.modules[f"{ADDON_MODULE}.addon.{name}"]


def png_bomb(path: Path, side: int = 20000) -> Path:
    """A real PNG, 1-bit grey, whose IDAT holds side rows of zeros compressed ~1000:1 (about 48 KB)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" * (1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


# A fresh Blender (the bpy module) that meets the bomb through the file browser, a reference empty and the
# panel's reference batch, then reports what the artist saw, what was queued and its own peak memory.
DRIVER = """
import json, resource, sys
sys.path.insert(0, {scripts!r})
import kiln_loader
kiln_loader.isolate_user_resources()
import bpy
kiln = kiln_loader.load_kiln()
runtime = sys.modules[kiln.__name__ + ".addon.blender.runtime"]
seen = {{}}
try:
    bpy.ops.kiln.batch_images(filepath={bomb!r})
except RuntimeError as exc:
    seen["file browser"] = str(exc)
image = bpy.data.images.load({bomb!r})  # Add > Image > Reference: Blender reads pixels only when drawing
empty = bpy.data.objects.new("bomb_ref", None)
empty.empty_display_type = "IMAGE"
empty.data = image
bpy.context.scene.collection.objects.link(empty)
for obj in bpy.context.scene.objects:
    obj.select_set(obj is empty)
bpy.context.view_layer.objects.active = empty
try:
    bpy.ops.kiln.batch_images()
except RuntimeError as exc:
    seen["reference"] = str(exc)
image.pack()  # packed into the .blend: the same bytes, with no file on disk behind them
try:
    bpy.ops.kiln.batch_images()
except RuntimeError as exc:
    seen["packed reference"] = str(exc)
seen["queued"] = len(runtime.scheduler().views())
seen["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print("RESULT " + json.dumps(seen))
"""


def child_peak_rss(command: list[str], **kwargs: object) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run `command` under a small launcher that reports its child's peak memory (ru_maxrss of its only
    child), so other processes of this test session cannot blur the figure."""
    launcher = ("import json, resource, subprocess, sys\n"
                "done = subprocess.run(sys.argv[1:])\n"
                "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, file=sys.stderr)\n"
                "sys.exit(done.returncode)\n")
    done = subprocess.run([sys.executable, "-c", launcher, *command], capture_output=True, text=True, timeout=300,
                          **kwargs)  # type: ignore[call-overload]
    peak = int(done.stderr.rsplit("PEAK ", 1)[1].split()[0])
    return done, peak


def test_a_png_bomb_is_refused_everywhere_before_blender_decodes_it(tmp_path: Path) -> None:
    bomb = png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 64 * 1024
    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    code = DRIVER.format(scripts=str(REPO / "scripts"), bomb=str(bomb))
    done, peak = child_peak_rss([sys.executable, "-c", code], env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.rsplit("RESULT ", 1)[1])
    expected = "'bomb.png' is 20000 x 20000 px: larger than Kiln's 64 MP limit for reference images; downscale it first"
    assert expected in seen["file browser"], seen
    assert expected in seen["reference"], seen
    assert expected in seen["packed reference"], seen
    assert seen["queued"] == 0, "nothing queued, nothing spent"
    assert seen["peak_rss"] < PEAK_RSS_LIMIT and peak < PEAK_RSS_LIMIT, f"peak memory {peak / 2**20:.0f} MB"
    print(f"bomb refused in the add-on: peak RSS {peak / 2**20:.0f} MB")


def test_a_batch_with_a_png_bomb_exits_2_before_anything_runs(tmp_path: Path) -> None:
    png_bomb(tmp_path / "bomb.png")
    manifest = tmp_path / "bombs.toml"
    manifest.write_text('[batch]\nname = "env_bomb_01"\nbackend = "local"\n\n[[asset]]\nprompt = "crate"\n\n'
                        '[[asset]]\nimage = "bomb.png"\n')
    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    done, peak = child_peak_rss([sys.executable, str(REPO / "scripts/kiln_batch.py"), str(manifest), "--out",
                                 str(tmp_path / "out")], env=env)
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("kiln batch: error:")]
    assert errors == ["kiln batch: error: asset[2].image: bomb.png is 20000 x 20000 px: larger than Kiln's 64 MP "
                      "limit for reference images; downscale it first"], done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists(), "refused before any folder was made"
    assert peak < PEAK_RSS_LIMIT, f"peak memory {peak / 2**20:.0f} MB"
    print(f"bomb refused by the batch: peak RSS {peak / 2**20:.0f} MB")


def test_a_large_image_under_the_limit_still_works_within_the_ceiling(runtime: ModuleType, tmp_path: Path) -> None:
    """An 8192 x 8192 PNG (64 MP exactly: the largest Kiln opens) is read, downscaled and checked."""
    images = engine("blender.images")
    side = 8192
    row = b"\x00" + b"\x00\x00\x00\xff" * side  # opaque black RGBA
    packer = zlib.compressobj(6)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    # Read by Blender and downscaled, then judged on its pixels (a plain black square has no subject).
    with pytest.raises(engine("validation").InputError, match="no subject stands out"):
        images.prepare_image(path, tmp_path / "inputs")


@pytest.mark.parametrize(("file_format", "settings", "deep"), [
    ("PNG", {"color_depth": "8"}, False),
    ("PNG", {"color_depth": "16"}, True),
    ("JPEG", {}, False),
    ("BMP", {}, False),
    ("TARGA", {}, False),
    ("TARGA_RAW", {}, False),
    ("TIFF", {"color_depth": "8"}, False),
    ("TIFF", {"color_depth": "16"}, True),
    ("HDR", {}, True),
    ("OPEN_EXR", {}, True),
    ("WEBP", {}, False),
])
def test_the_header_reader_agrees_with_files_blender_writes(kiln: ModuleType, tmp_path: Path, file_format: str,
                                                            settings: dict[str, str], deep: bool) -> None:
    import bpy

    header_module = engine("imaging.header")
    image = bpy.data.images.new("probe", 37, 23, alpha=True, float_buffer=deep)
    scene = bpy.context.scene
    image_settings = scene.render.image_settings
    formats = {item.identifier for item in image_settings.bl_rna.properties["file_format"].enum_items}
    if file_format not in formats:
        pytest.skip(f"this Blender cannot write {file_format}")
    image_settings.file_format = file_format
    for key, value in settings.items():
        setattr(image_settings, key, value)
    suffix = {"TARGA": ".tga", "TARGA_RAW": ".tga", "OPEN_EXR": ".exr", "JPEG": ".jpg", "TIFF": ".tif"}.get(
        file_format, f".{file_format.lower()}")
    path = tmp_path / f"probe{suffix}"
    try:
        image.save_render(str(path), scene=scene)
    finally:
        bpy.data.images.remove(image)
        image_settings.file_format = "PNG"
        image_settings.color_depth = "8"
    header = header_module.read_header(path)
    assert header is not None, path.read_bytes()[:32]
    assert (header.width, header.height, header.deep) == (37, 23, deep)
    loaded = bpy.data.images.load(str(path), check_existing=False)
    try:
        assert tuple(loaded.size) == (37, 23)
    finally:
        bpy.data.images.remove(loaded)
