"""Closed primitives for procedural blockouts, in Blender's axes (Z up).

Every primitive is a closed surface wound counter-clockwise seen from outside. Vertices are split
only where normals or UVs must differ; positions still coincide, so an importer that merges by
position (Blender's glTF importer with `merge_vertices`) rebuilds a manifold shell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ...imaging.glb import FloatArray, IndexArray, MeshPart


@dataclass
class Shape:
    positions: FloatArray
    normals: FloatArray
    uvs: FloatArray
    indices: IndexArray

    def moved(self, offset: tuple[float, float, float]) -> Shape:
        return Shape(self.positions + np.asarray(offset, np.float32), self.normals, self.uvs, self.indices)

    def scaled(self, factors: tuple[float, float, float]) -> Shape:
        scale = np.asarray(factors, np.float32)
        normals = self.normals / scale
        normals /= np.linalg.norm(normals, axis=1, keepdims=True).clip(1e-9)
        return Shape(self.positions * scale, normals.astype(np.float32), self.uvs, self.indices)

    def transformed(self, matrix: npt.NDArray[np.float32]) -> Shape:
        """Apply a rotation (orthonormal 3x3) about the origin."""
        rot = np.asarray(matrix, np.float32)
        return Shape((self.positions @ rot.T).astype(np.float32), (self.normals @ rot.T).astype(np.float32),
                     self.uvs, self.indices)

    def rotated(self, axis: str, angle: float) -> Shape:
        c, s = math.cos(angle), math.sin(angle)
        matrices = {
            "x": [[1, 0, 0], [0, c, -s], [0, s, c]],
            "y": [[c, 0, s], [0, 1, 0], [-s, 0, c]],
            "z": [[c, -s, 0], [s, c, 0], [0, 0, 1]],
        }
        rot = np.asarray(matrices[axis], np.float32)
        return Shape(self.positions @ rot.T, self.normals @ rot.T, self.uvs, self.indices)


@dataclass
class PartBuilder:
    """Collects shapes per material into MeshParts."""

    shapes: dict[int, list[Shape]] = field(default_factory=dict)

    def add(self, shape: Shape, material: int = 0) -> None:
        self.shapes.setdefault(material, []).append(shape)

    def parts(self) -> list[MeshPart]:
        result = []
        for material, shapes in sorted(self.shapes.items()):
            offsets = np.cumsum([0] + [len(s.positions) for s in shapes[:-1]])
            result.append(MeshPart(
                positions=np.concatenate([s.positions for s in shapes]),
                normals=np.concatenate([s.normals for s in shapes]),
                uvs=np.concatenate([s.uvs for s in shapes]),
                indices=np.concatenate([s.indices + off for s, off in zip(shapes, offsets, strict=True)]),
                material=material,
            ))
        return result


def box(size: tuple[float, float, float], center: tuple[float, float, float] = (0, 0, 0)) -> Shape:
    """An axis-aligned box with flat normals."""
    hx, hy, hz = (s / 2 for s in size)
    faces = [  # normal, then four corners counter-clockwise seen from outside
        ((1, 0, 0), [(hx, -hy, -hz), (hx, hy, -hz), (hx, hy, hz), (hx, -hy, hz)]),
        ((-1, 0, 0), [(-hx, hy, -hz), (-hx, -hy, -hz), (-hx, -hy, hz), (-hx, hy, hz)]),
        ((0, 1, 0), [(hx, hy, -hz), (-hx, hy, -hz), (-hx, hy, hz), (hx, hy, hz)]),
        ((0, -1, 0), [(-hx, -hy, -hz), (hx, -hy, -hz), (hx, -hy, hz), (-hx, -hy, hz)]),
        ((0, 0, 1), [(-hx, -hy, hz), (hx, -hy, hz), (hx, hy, hz), (-hx, hy, hz)]),
        ((0, 0, -1), [(-hx, hy, -hz), (hx, hy, -hz), (hx, -hy, -hz), (-hx, -hy, -hz)]),
    ]
    positions = np.array([corner for _, corners in faces for corner in corners], np.float32)
    normals = np.array([normal for normal, _ in faces for _ in range(4)], np.float32)
    uvs = np.tile(np.array([(0, 0), (1, 0), (1, 1), (0, 1)], np.float32), (6, 1))
    quads = np.arange(24, dtype=np.uint32).reshape(6, 4)
    indices = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    return Shape(positions + np.asarray(center, np.float32), normals, uvs, indices)


def lathe(profile: list[tuple[float, float]], segments: int = 16) -> Shape:
    """A surface of revolution around Z from (radius, z) points listed bottom to top.

    The first and last points should have radius 0 (closed poles); the caps are then part of the
    profile, so the result is closed. Normals are smooth around, per-segment along the profile.
    """
    radii = np.array([p[0] for p in profile], np.float32)
    heights = np.array([p[1] for p in profile], np.float32)
    rings = len(profile)
    angles = np.linspace(0.0, 2 * math.pi, segments + 1, dtype=np.float32)  # seam column repeated for UVs
    cos, sin = np.cos(angles), np.sin(angles)
    positions = np.stack([
        (radii[:, None] * cos[None, :]).ravel(),
        (radii[:, None] * sin[None, :]).ravel(),
        np.repeat(heights, segments + 1),
    ], axis=1).astype(np.float32)
    # The seam column repeats the first one bit for bit (cos 2π is not exactly 1 in floats), so
    # anything that merges by position, or transforms both identically, sees one vertex.
    grid = positions.reshape(rings, segments + 1, 3)
    grid[:, segments] = grid[:, 0]
    # Profile normal: perpendicular to the profile's tangent in the (r, z) plane.
    dr = np.gradient(radii)
    dz = np.gradient(heights)
    length = np.hypot(dr, dz).clip(1e-9)
    nr, nz = dz / length, -dr / length
    normals = np.stack([
        (nr[:, None] * cos[None, :]).ravel(),
        (nr[:, None] * sin[None, :]).ravel(),
        np.repeat(nz, segments + 1),
    ], axis=1).astype(np.float32)
    along = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(radii), np.diff(heights)))])
    along = along / max(float(along[-1]), 1e-9)
    uvs = np.stack([
        np.tile(angles / (2 * math.pi), rings),
        np.repeat(along, segments + 1),
    ], axis=1).astype(np.float32)
    width = segments + 1
    a = (np.arange(rings - 1)[:, None] * width + np.arange(segments)[None, :]).astype(np.int64)
    b, c = a + 1, a + width
    d = c + 1
    # A ring of radius 0 is a pole: the quads touching it degenerate to one triangle each.
    lower = np.repeat(radii[:-1] > 1e-7, segments).reshape(rings - 1, segments)
    upper = np.repeat(radii[1:] > 1e-7, segments).reshape(rings - 1, segments)
    first = np.stack([a, b, d], axis=-1)[lower]
    second = np.stack([a, d, c], axis=-1)[upper]
    # Interleave per quad as the loop did, so the triangle order (and every file) stays the same.
    order = np.concatenate([np.flatnonzero(lower.ravel()) * 2, np.flatnonzero(upper.ravel()) * 2 + 1])
    tris = np.concatenate([first, second])[np.argsort(order, kind="stable")]
    return Shape(positions, normals, uvs, tris.astype(np.uint32).reshape(-1, 3))


def cylinder(radius: float, height: float, segments: int = 16, top_radius: float | None = None) -> Shape:
    """A capped cylinder (or frustum, or cone when top_radius is 0) standing on z=0."""
    top = radius if top_radius is None else top_radius
    profile = [(0.0, 0.0), (radius, 0.0), (radius, 0.0), (top, height)]
    if top > 1e-7:
        profile += [(top, height), (0.0, height)]
    return hard_lathe(profile, segments)


def hard_lathe(profile: list[tuple[float, float]], segments: int) -> Shape:
    """A lathe with hard edges where a profile point is repeated (cap rims): each span gets its
    own vertices and flat profile normal, so caps shade flat."""
    spans = []
    start = 0
    for i in range(1, len(profile)):
        if profile[i] == profile[i - 1]:
            spans.append(profile[start:i])
            start = i
    spans.append(profile[start:])
    shapes = [_span(span, segments) for span in spans if len(span) >= 2]
    offsets = np.cumsum([0] + [len(s.positions) for s in shapes[:-1]])
    return Shape(
        np.concatenate([s.positions for s in shapes]),
        np.concatenate([s.normals for s in shapes]),
        np.concatenate([s.uvs for s in shapes]),
        np.concatenate([s.indices + off for s, off in zip(shapes, offsets, strict=True)]).astype(np.uint32),
    )


def _span(points: list[tuple[float, float]], segments: int) -> Shape:
    shape = lathe(points, segments)
    if len(points) == 2:  # a straight span: one flat profile normal for both rings
        (r0, z0), (r1, z1) = points
        length = max(math.hypot(r1 - r0, z1 - z0), 1e-9)
        nr, nz = (z1 - z0) / length, -(r1 - r0) / length
        angles = np.linspace(0.0, 2 * math.pi, segments + 1, dtype=np.float32)
        ring = np.stack([nr * np.cos(angles), nr * np.sin(angles), np.full_like(angles, nz)], axis=1)
        shape.normals = np.concatenate([ring, ring]).astype(np.float32)
    return shape


def sphere(radius: float = 1.0, rings: int = 10, segments: int = 16) -> Shape:
    """A UV sphere centred at the origin."""
    thetas = np.linspace(0.0, math.pi, rings + 1)
    profile = [(float(radius * math.sin(t)), float(-radius * math.cos(t))) for t in thetas]
    profile[0] = (0.0, -radius)
    profile[-1] = (0.0, radius)
    shape = lathe(profile, segments)
    shape.normals = (shape.positions / np.linalg.norm(shape.positions, axis=1, keepdims=True).clip(1e-9)).astype(
        np.float32
    )
    return shape


def triangulate_polygon(points: list[tuple[float, float]]) -> list[tuple[int, int, int]]:
    """Ear clipping for a simple polygon given counter-clockwise; returns index triangles (CCW)."""
    remaining = list(range(len(points)))
    triangles: list[tuple[int, int, int]] = []

    def cross(o: int, a: int, b: int) -> float:
        (ox, oy), (ax, ay), (bx, by) = points[o], points[a], points[b]
        return (ax - ox) * (by - oy) - (ay - oy) * (bx - ox)

    def inside(p: int, a: int, b: int, c: int, strict: bool) -> bool:
        if points[p] in (points[a], points[b], points[c]):
            return False
        edges = (cross(a, b, p), cross(b, c, p), cross(c, a, p))
        return all(e > 0 for e in edges) if strict else all(e >= 0 for e in edges)

    def find_ear(strict: bool) -> int | None:
        for i in range(len(remaining)):
            a, b, c = remaining[i - 1], remaining[i], remaining[(i + 1) % len(remaining)]
            if cross(a, b, c) <= 1e-12:
                continue  # reflex or degenerate corner: not an ear
            if not any(inside(p, a, b, c, strict) for p in remaining if p not in (a, b, c)):
                return i
        return None

    while len(remaining) > 3:
        # Prefer ears with no vertex even on their border; accept touching ones only if needed.
        ear = find_ear(strict=False)
        if ear is None:
            ear = find_ear(strict=True)
        if ear is None:
            raise ValueError("polygon is not simple or not counter-clockwise")
        triangles.append((remaining[ear - 1], remaining[ear], remaining[(ear + 1) % len(remaining)]))
        remaining.pop(ear)
    triangles.append((remaining[0], remaining[1], remaining[2]))
    return triangles


def prism(outline: list[tuple[float, float]], depth: float) -> Shape:
    """Extrude a simple polygon drawn in the XZ plane (counter-clockwise seen from -Y, the front)
    along +Y by `depth`, centred on y=0. Flat-shaded, closed."""
    count = len(outline)
    front_y, back_y = -depth / 2, depth / 2
    xs = np.array([p[0] for p in outline], np.float32)
    zs = np.array([p[1] for p in outline], np.float32)
    span_x = max(float(xs.max() - xs.min()), 1e-6)
    span_z = max(float(zs.max() - zs.min()), 1e-6)
    cap_uv = np.stack([(xs - xs.min()) / span_x, (zs - zs.min()) / span_z], axis=1)
    tris = triangulate_polygon(outline)
    positions = [np.stack([xs, np.full(count, front_y), zs], axis=1),
                 np.stack([xs, np.full(count, back_y), zs], axis=1)]
    normals = [np.tile([0.0, -1.0, 0.0], (count, 1)), np.tile([0.0, 1.0, 0.0], (count, 1))]
    uvs = [cap_uv, cap_uv]
    # Seen from -Y, (x, z) counter-clockwise is counter-clockwise on the front cap: keep the order there,
    # reverse it on the back cap, which is seen from +Y.
    indices = [np.array(tris), np.array([(a, c, b) for a, b, c in tris]) + count]
    offset = 2 * count
    for i in range(count):
        j = (i + 1) % count
        (x0, z0), (x1, z1) = outline[i], outline[j]
        edge = np.array([x1 - x0, z1 - z0])
        length = float(np.hypot(*edge)) or 1e-9
        normal = (edge[1] / length, 0.0, -edge[0] / length)  # outward for a CCW outline
        positions.append(np.array([(x0, front_y, z0), (x1, front_y, z1), (x1, back_y, z1), (x0, back_y, z0)]))
        normals.append(np.tile(normal, (4, 1)))
        uvs.append(np.array([(0, 0), (length, 0), (length, 1), (0, 1)]))
        indices.append(np.array([(offset, offset + 2, offset + 1), (offset, offset + 3, offset + 2)]))
        offset += 4
    return Shape(
        np.concatenate(positions).astype(np.float32),
        np.concatenate(normals).astype(np.float32),
        np.concatenate(uvs).astype(np.float32),
        np.concatenate(indices).astype(np.uint32),
    )


def rounded_box(size: tuple[float, float, float], bevel: float, steps: int = 1) -> Shape:
    """A box standing on z=0 whose edges are rounded by `bevel` (a Minkowski sum of a smaller box and a
    sphere), `steps` facets per rounded edge. Each face is its own grid; positions along shared edges
    coincide exactly, so merging by position closes the shell."""
    half = np.asarray(size, np.float32) / 2
    radius = float(min(bevel, *(half * 0.95)))
    if radius <= 1e-6:
        return box(size, (0, 0, size[2] / 2))
    faces = []
    for axis in range(3):
        u_axis, v_axis = (axis + 1) % 3, (axis + 2) % 3
        for sign in (1.0, -1.0):
            u = _bevel_ticks(float(half[u_axis]), radius, steps)
            v = _bevel_ticks(float(half[v_axis]), radius, steps)
            uu, vv = np.meshgrid(u, v, indexing="ij")
            grid = np.zeros((*uu.shape, 3), np.float32)
            grid[..., axis] = sign * half[axis]
            grid[..., u_axis] = uu
            grid[..., v_axis] = vv
            points = grid.reshape(-1, 3)
            inner = np.clip(points, -(half - radius), half - radius)
            direction = points - inner
            direction /= np.linalg.norm(direction, axis=1, keepdims=True).clip(1e-9)
            positions = inner + direction * radius
            count_u, count_v = len(u), len(v)
            ids = np.arange(count_u * count_v).reshape(count_u, count_v)
            a, b, c, d = ids[:-1, :-1].ravel(), ids[1:, :-1].ravel(), ids[1:, 1:].ravel(), ids[:-1, 1:].ravel()
            # (u, v, axis) is right-handed: counter-clockwise from outside on the + face, mirrored on the - face.
            tris = (np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)]) if sign > 0
                    else np.concatenate([np.stack([a, c, b], 1), np.stack([a, d, c], 1)]))
            uvs = np.stack([(uu.ravel() / half[u_axis] + 1) / 2, (vv.ravel() / half[v_axis] + 1) / 2], 1)
            faces.append(Shape(positions.astype(np.float32), direction.astype(np.float32),
                               uvs.astype(np.float32), tris.astype(np.uint32)))
    return merge(faces).moved((0, 0, float(half[2])))


def _bevel_ticks(half: float, radius: float, steps: int) -> npt.NDArray[np.float32]:
    edge = np.linspace(-half, -half + radius, steps + 1)
    ticks: npt.NDArray[np.float32] = np.concatenate([edge, -edge[::-1]]).astype(np.float32)
    return ticks


def merge(shapes: list[Shape]) -> Shape:
    """One shape holding several (their index ranges offset)."""
    offsets = np.cumsum([0] + [len(s.positions) for s in shapes[:-1]])
    return Shape(
        np.concatenate([s.positions for s in shapes]).astype(np.float32),
        np.concatenate([s.normals for s in shapes]).astype(np.float32),
        np.concatenate([s.uvs for s in shapes]).astype(np.float32),
        np.concatenate([s.indices + off for s, off in zip(shapes, offsets, strict=True)]).astype(np.uint32),
    )


def torus(major: float, minor: float, segments: int = 16, sides: int = 8) -> Shape:
    """A ring around Z centred at the origin: a lathe of a circle (seam vertices repeated for UVs)."""
    ring = np.linspace(0.0, 2 * math.pi, sides + 1)
    # The lathe's profile runs bottom to top: start at the inside bottom so the tube winds outward.
    profile = [(major - minor * math.cos(t), -minor * math.sin(t)) for t in ring]
    profile[-1] = profile[0]  # closed exactly, not to within cos(2π)
    shape = lathe([(float(r), float(z)) for r, z in profile], segments)
    centre = shape.positions.copy()
    radial = np.linalg.norm(centre[:, :2], axis=1, keepdims=True).clip(1e-9)
    centre[:, :2] = centre[:, :2] / radial * major
    centre[:, 2] = 0
    normals = shape.positions - centre
    shape.normals = (normals / np.linalg.norm(normals, axis=1, keepdims=True).clip(1e-9)).astype(np.float32)
    return shape


def tube(start: tuple[float, float, float], end: tuple[float, float, float], radius: float, segments: int = 8,
         end_radius: float | None = None) -> Shape:
    """A capped cylinder (or frustum) from `start` to `end`."""
    a, b = np.asarray(start, np.float32), np.asarray(end, np.float32)
    length = float(np.linalg.norm(b - a))
    shape = cylinder(radius, max(length, 1e-4), segments, top_radius=end_radius)
    return shape.transformed(_align_z(b - a)).moved((float(a[0]), float(a[1]), float(a[2])))


def _align_z(direction: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A rotation taking +Z to `direction`."""
    z = direction / max(float(np.linalg.norm(direction)), 1e-9)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    matrix: npt.NDArray[np.float32] = np.stack([x, y, z], axis=1).astype(np.float32)
    return matrix
