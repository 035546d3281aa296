"""A small glTF 2.0 binary (GLB) writer: meshes, PBR materials and embedded PNG textures.

Written here rather than taken from a library because Blender ships none that is usable from a
worker thread without `bpy`, and the subset Kiln needs (indexed triangles, one node, core PBR) fits
in one page. Geometry is given in Blender's axes (Z up, facing -Y) and converted to glTF's (Y up,
facing +Z) on write, so Blender's importer puts it back upright.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IndexArray = npt.NDArray[np.uint32]

_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
_FLOAT = 5126
_UNSIGNED_INT = 5125


@dataclass
class Material:
    name: str
    base_color: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)
    metallic: float = 0.0
    roughness: float = 0.8
    texture_png: bytes | None = None
    emissive: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass
class MeshPart:
    """Triangles sharing one material. Arrays are float32 (N,3)/(N,3)/(N,2) and uint32 (M,3)."""

    positions: FloatArray
    normals: FloatArray
    uvs: FloatArray
    indices: IndexArray
    material: int = 0

    def __post_init__(self) -> None:
        self.positions = np.ascontiguousarray(self.positions, dtype=np.float32)
        self.normals = np.ascontiguousarray(self.normals, dtype=np.float32)
        self.uvs = np.ascontiguousarray(self.uvs, dtype=np.float32)
        self.indices = np.ascontiguousarray(self.indices, dtype=np.uint32)


@dataclass
class _BufferBuilder:
    data: bytearray = field(default_factory=bytearray)
    views: list[dict[str, Any]] = field(default_factory=list)
    accessors: list[dict[str, Any]] = field(default_factory=list)

    def add_view(self, payload: bytes, target: int | None = None) -> int:
        while len(self.data) % 4:
            self.data.append(0)
        view: dict[str, Any] = {"buffer": 0, "byteOffset": len(self.data), "byteLength": len(payload)}
        if target is not None:
            view["target"] = target
        self.data.extend(payload)
        self.views.append(view)
        return len(self.views) - 1

    def add_accessor(self, array: npt.NDArray[Any], kind: str, *, with_bounds: bool = False) -> int:
        is_index = array.dtype == np.uint32
        view = self.add_view(array.tobytes(), _ELEMENT_ARRAY_BUFFER if is_index else _ARRAY_BUFFER)
        accessor: dict[str, Any] = {
            "bufferView": view,
            "componentType": _UNSIGNED_INT if is_index else _FLOAT,
            "count": int(array.size if is_index else array.shape[0]),
            "type": kind,
        }
        if with_bounds:
            accessor["min"] = [float(v) for v in array.min(axis=0)]
            accessor["max"] = [float(v) for v in array.max(axis=0)]
        self.accessors.append(accessor)
        return len(self.accessors) - 1


def blender_to_gltf(vectors: FloatArray) -> FloatArray:
    """(x, y, z) Z-up → (x, z, -y) Y-up."""
    return np.ascontiguousarray(np.stack([vectors[:, 0], vectors[:, 2], -vectors[:, 1]], axis=1), dtype=np.float32)


def build_glb(
    name: str, parts: list[MeshPart], materials: list[Material], extras: dict[str, Any] | None = None
) -> bytes:
    buffer = _BufferBuilder()
    images: list[dict[str, Any]] = []
    textures: list[dict[str, Any]] = []
    gltf_materials: list[dict[str, Any]] = []
    for material in materials:
        pbr: dict[str, Any] = {
            "baseColorFactor": [float(c) for c in material.base_color],
            "metallicFactor": float(material.metallic),
            "roughnessFactor": float(material.roughness),
        }
        if material.texture_png is not None:
            images.append({"bufferView": buffer.add_view(material.texture_png), "mimeType": "image/png"})
            textures.append({"source": len(images) - 1, "sampler": 0})
            pbr["baseColorTexture"] = {"index": len(textures) - 1}
        entry: dict[str, Any] = {"name": material.name, "pbrMetallicRoughness": pbr}
        if any(material.emissive):
            entry["emissiveFactor"] = [float(c) for c in material.emissive]
        gltf_materials.append(entry)

    primitives = []
    for part in parts:
        if part.indices.size == 0:
            continue
        attributes = {
            "POSITION": buffer.add_accessor(blender_to_gltf(part.positions), "VEC3", with_bounds=True),
            "NORMAL": buffer.add_accessor(blender_to_gltf(part.normals), "VEC3"),
            "TEXCOORD_0": buffer.add_accessor(part.uvs, "VEC2"),
        }
        indices = buffer.add_accessor(part.indices.reshape(-1), "SCALAR")
        primitives.append({"attributes": attributes, "indices": indices, "material": part.material, "mode": 4})

    document: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "Kiln local engine"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": name, "mesh": 0}],
        "meshes": [{"name": name, "primitives": primitives}],
        "materials": gltf_materials,
        "accessors": buffer.accessors,
        "bufferViews": buffer.views,
        "buffers": [{"byteLength": len(buffer.data)}],
    }
    if extras:
        document["nodes"][0]["extras"] = extras
    if images:
        document["images"] = images
        document["textures"] = textures
        document["samplers"] = [{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}]

    json_chunk = json.dumps(document, separators=(",", ":")).encode()
    json_chunk += b" " * (-len(json_chunk) % 4)
    bin_chunk = bytes(buffer.data) + b"\0" * (-len(buffer.data) % 4)
    total = 12 + 8 + len(json_chunk) + 8 + len(bin_chunk)
    return b"".join([
        struct.pack("<4sII", b"glTF", 2, total),
        struct.pack("<I4s", len(json_chunk), b"JSON"), json_chunk,
        struct.pack("<I4s", len(bin_chunk), b"BIN\0"), bin_chunk,
    ])


def write_glb(path: Path, name: str, parts: list[MeshPart], materials: list[Material],
              extras: dict[str, Any] | None = None) -> int:
    """Write atomically (temp name, then rename); returns the file size in bytes."""
    payload = build_glb(name, parts, materials, extras)
    tmp = path.with_suffix(".glb.part")
    tmp.write_bytes(payload)
    tmp.replace(path)
    return len(payload)


def read_glb_json(path: Path) -> dict[str, Any]:
    """The JSON chunk of a GLB, for tests and metadata checks."""
    data = path.read_bytes()
    magic, version, _ = struct.unpack_from("<4sII", data, 0)
    if magic != b"glTF" or version != 2:
        raise ValueError(f"{path} is not a glTF 2.0 binary")
    length, kind = struct.unpack_from("<I4s", data, 12)
    if kind != b"JSON":
        raise ValueError(f"{path}: first chunk is not JSON")
    parsed: dict[str, Any] = json.loads(data[20 : 20 + length])
    return parsed
