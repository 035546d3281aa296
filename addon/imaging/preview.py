"""A small software renderer for the preview PNG every local result carries, as cloud results do.

No OpenGL in a worker thread, so triangles are sampled as points (as many per triangle as it covers
pixels) and composited with a depth buffer in numpy. A three-quarter orthographic view with one key
light, on a light grey backdrop: enough for an Asset Browser thumbnail.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .glb import Material, MeshPart

VIEW_DIRECTION = np.array([0.55, -1.0, 0.5])  # from the subject towards the camera: front-right, above
LIGHT_DIRECTION = np.array([0.3, -0.6, 0.75])
MAX_SAMPLES = 1_500_000
SAMPLES_PER_PIXEL = 0.7
"""Random surface samples per pixel of a triangle's screen area. Each is drawn as a 2x2 splat, so a
pixel is left uncovered with probability e^(-4 * 0.7) ≈ 6%, mostly filled by the layer behind: the
coverage of 2.5 one-pixel samples per pixel for under a third of the samples, which are the cost."""
SPLAT = ((0, 0), (1, 0), (0, 1), (1, 1))


def render_preview(
    parts: list[MeshPart],
    materials: list[Material],
    textures: dict[int, npt.NDArray[np.uint8]] | None = None,
    size: int = 256,
    seed: int = 0,
) -> npt.NDArray[np.uint8]:
    """An (size, size, 3) uint8 image of the parts. `textures` maps material index → RGB image."""
    textures = textures or {}
    toward_camera = VIEW_DIRECTION / np.linalg.norm(VIEW_DIRECTION)
    right = np.cross(-toward_camera, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, -toward_camera)
    light = LIGHT_DIRECTION / np.linalg.norm(LIGHT_DIRECTION)

    background = np.linspace(235, 200, size, dtype=np.float32)[:, None, None] * np.ones((1, size, 3), np.float32)
    all_positions = np.concatenate([p.positions for p in parts]) if parts else np.zeros((0, 3), np.float32)
    if not len(all_positions):
        return background.astype(np.uint8)
    screen_all = np.stack([all_positions @ right, all_positions @ up], axis=1)
    low, high = screen_all.min(axis=0), screen_all.max(axis=0)
    scale = 0.86 * size / max(float((high - low).max()), 1e-9)
    center = (low + high) / 2

    rng = np.random.default_rng(seed)
    samples_px: list[npt.NDArray[np.int64]] = []
    samples_depth: list[npt.NDArray[np.float32]] = []
    samples_color: list[npt.NDArray[np.float32]] = []
    budget = MAX_SAMPLES
    for part in parts:
        tri = part.indices.reshape(-1, 3)
        p0, p1, p2 = (part.positions[tri[:, k]] for k in range(3))
        face_normal = np.cross(p1 - p0, p2 - p0)
        length = np.linalg.norm(face_normal, axis=1, keepdims=True)
        face_normal = face_normal / np.maximum(length, 1e-12)
        to_screen = np.stack([right, up], axis=1) * scale
        s0, s1, s2 = p0 @ to_screen, p1 @ to_screen, p2 @ to_screen
        area_px = 0.5 * np.abs((s1 - s0)[:, 0] * (s2 - s0)[:, 1] - (s1 - s0)[:, 1] * (s2 - s0)[:, 0])
        counts = np.minimum(np.ceil(area_px * SAMPLES_PER_PIXEL).astype(np.int64) + 1, 4000)
        if counts.sum() > budget:
            counts = np.maximum(1, (counts * budget / counts.sum()).astype(np.int64))
        budget -= int(counts.sum())
        owner = np.repeat(np.arange(len(tri)), counts)
        r1, r2 = rng.random(len(owner)), rng.random(len(owner))
        flip = r1 + r2 > 1
        r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
        b0 = (1 - r1 - r2)[:, None]
        points = b0 * p0[owner] + r1[:, None] * p1[owner] + r2[:, None] * p2[owner]
        material = materials[part.material] if part.material < len(materials) else Material("default")
        texture = textures.get(part.material)
        if texture is not None:
            uv = (b0 * part.uvs[tri[owner, 0]] + r1[:, None] * part.uvs[tri[owner, 1]]
                  + r2[:, None] * part.uvs[tri[owner, 2]])
            th, tw = texture.shape[:2]
            tx = np.clip((uv[:, 0] * tw).astype(np.int64), 0, tw - 1)
            ty = np.clip((uv[:, 1] * th).astype(np.int64), 0, th - 1)
            base = texture[ty, tx, :3].astype(np.float32) / 255.0
        else:
            base = np.broadcast_to(np.asarray(material.base_color[:3], np.float32), (len(owner), 3))
        normal = face_normal[owner]
        facing = np.sign(normal @ toward_camera)[:, None]  # light the side the camera sees
        diffuse = np.clip((normal * facing) @ light, 0.0, 1.0)[:, None]
        color = base * (0.35 + 0.75 * diffuse) + np.asarray(material.emissive, np.float32) * 0.6
        screen = (np.stack([points @ right, points @ up], axis=1) - center) * scale
        px = (screen[:, 0] + size / 2 - 0.5).astype(np.int64)  # the splat's top-left pixel
        py = (size / 2 - screen[:, 1] - 0.5).astype(np.int64)
        samples_px.append(np.stack([np.clip(py + dy, 0, size - 1) * size + np.clip(px + dx, 0, size - 1)
                                    for dx, dy in SPLAT], axis=1))
        samples_depth.append((points @ toward_camera).astype(np.float32))
        samples_color.append(np.clip(color, 0.0, 1.0).astype(np.float32))

    pixel = np.concatenate(samples_px).ravel()  # each sample's splat pixels, sample by sample
    sample = np.repeat(np.arange(len(pixel) // len(SPLAT)), len(SPLAT))
    away = -np.concatenate(samples_depth)[sample]
    color = np.concatenate(samples_color)
    # A depth buffer: each pixel keeps its nearest sample. An unbuffered minimum per pixel is linear in
    # the samples, where sorting them took most of the preview's time (60 ms for 160k samples).
    nearest = np.full(size * size, np.inf, np.float32)
    np.minimum.at(nearest, pixel, away)
    front = away == nearest[pixel]
    image = background.reshape(-1, 3)
    image[pixel[front]] = color[sample[front]] * 255.0
    return np.clip(image.reshape(size, size, 3), 0, 255).astype(np.uint8)
