"""Finishing presets carried out with Blender's own tools: remesh, decimate, UV, bake, textures, LODs.

Each step reports what it did. A step that fails restores the asset as it was before that step,
reports the error and lets the rest of the preset (and the batch) go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bmesh
import bpy
from bpy_extras import mesh_utils

from ..jobs import THEME_PROMPT, BatchSpec, Job
from ..presets import FinishPreset
from .importer import bake_transform, origin_to_bottom_centre
from .placement import settle
from .quiet import quiet_stdout

_log = logging.getLogger(__name__)

VOXEL_RESOLUTION = 96
"""Voxels across the largest dimension for the organic remesh."""
QUADRIFLOW_MIN_EDGE_M = 2e-4
"""Edges shorter than Blender's 0.1 mm degenerate-edge test, with margin, are collapsed before QuadriFlow."""


@dataclass
class StepReport:
    step: str
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass
class FinishReport:
    asset: str
    preset: str
    steps: list[StepReport] = field(default_factory=list)
    lods: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {"asset": self.asset, "preset": self.preset, "ok": self.ok, "lods": self.lods,
                "seconds": round(self.seconds, 3),
                "steps": [{"step": s.step, "ok": s.ok, **s.detail, **({"error": s.error} if s.error else {})}
                          for s in self.steps]}


def face_count(obj: bpy.types.Object) -> int:
    mesh = obj.data
    return len(mesh.polygons) if isinstance(mesh, bpy.types.Mesh) else 0


def _override(obj: bpy.types.Object, *others: bpy.types.Object) -> Any:
    return bpy.context.temp_override(object=obj, active_object=obj, selected_objects=[obj, *others],
                                     selected_editable_objects=[obj, *others])


def _apply_modifier(obj: bpy.types.Object, kind: str, **settings: Any) -> None:
    """Add a modifier, evaluate it and keep the result as the object's mesh (no operator, no mode switch)."""
    modifier = obj.modifiers.new(name=f"kiln_{kind.lower()}", type=kind)  # type: ignore[arg-type]
    assert modifier is not None
    for key, value in settings.items():
        setattr(modifier, key, value)
    try:
        depsgraph = bpy.context.evaluated_depsgraph_get()
        evaluated = obj.evaluated_get(depsgraph)
        new_mesh = bpy.data.meshes.new_from_object(evaluated, preserve_all_data_layers=True, depsgraph=depsgraph)
    finally:
        obj.modifiers.remove(modifier)
    old = obj.data
    assert isinstance(old, bpy.types.Mesh)
    old_name = old.name
    new_mesh.name = old_name
    for material in old.materials:
        if material is not None and material.name not in new_mesh.materials:
            new_mesh.materials.append(material)
    obj.data = new_mesh
    if old.users == 0:
        bpy.data.meshes.remove(old)
        new_mesh.name = old_name  # it got a ".001" while the old mesh still held the name


def triangle_count(obj: bpy.types.Object) -> int:
    mesh = obj.data
    if not isinstance(mesh, bpy.types.Mesh):
        return 0
    return sum(polygon.loop_total - 2 for polygon in mesh.polygons)


def decimate_to(obj: bpy.types.Object, budget: int) -> dict[str, Any]:
    """Collapse-decimate until the face count is within `budget`. The ratio counts triangles, and
    collapsing turns quads into triangles, so one pass can land above the budget: repeat (at most 3)."""
    before = face_count(obj)
    for _ in range(3):
        if not budget or face_count(obj) <= budget:
            break
        _apply_modifier(obj, "DECIMATE", decimate_type="COLLAPSE",
                        ratio=max(0.01, 0.98 * budget / max(1, triangle_count(obj))))
    return {"faces_before": before, "faces_after": face_count(obj)}


def _has_uvs(obj: bpy.types.Object) -> bool:
    mesh = obj.data
    return isinstance(mesh, bpy.types.Mesh) and len(mesh.uv_layers) > 0


def uv_islands(obj: bpy.types.Object) -> int:
    mesh = obj.data
    if not isinstance(mesh, bpy.types.Mesh) or not mesh.uv_layers:
        return 0
    return len(mesh_utils.mesh_linked_uv_islands(mesh))


def unwrap(obj: bpy.types.Object, method: str) -> dict[str, Any]:
    mesh = obj.data
    assert isinstance(mesh, bpy.types.Mesh)
    if not mesh.uv_layers:
        mesh.uv_layers.new(name="UVMap")
    view_layer = bpy.context.view_layer
    assert view_layer is not None
    previous_active = view_layer.objects.active
    view_layer.objects.active = obj
    obj.select_set(True)
    try:
        with _override(obj):
            bpy.ops.object.mode_set(mode="EDIT")
            bpy.ops.mesh.select_all(action="SELECT")
            if method == "lightmap":
                bpy.ops.uv.lightmap_pack()
            else:
                bpy.ops.uv.smart_project(angle_limit=1.15, island_margin=0.02)
            bpy.ops.object.mode_set(mode="OBJECT")
    finally:
        view_layer.objects.active = previous_active
    return {"uv": method, "uv_islands": uv_islands(obj)}


def node_tree(material: bpy.types.Material) -> bpy.types.ShaderNodeTree:
    """The material's shader nodes. Blender 5.0 gives every material nodes (`use_nodes` is deprecated
    there and warns); 4.x makes them on request."""
    if bpy.app.version < (5, 0, 0):
        material.use_nodes = True
    tree = material.node_tree
    assert tree is not None
    return tree


def bake_colour(source: bpy.types.Object, target: bpy.types.Object, size: int) -> dict[str, Any]:
    """Bake the source's base colour onto the target's UVs with Cycles on the CPU (one sample: colour
    only needs no light transport) and give the target a material using the baked image."""
    if size < 8:
        raise ValueError(f"bake size {size} px is too small (at least 8)")
    scene = bpy.context.scene
    assert scene is not None
    image = bpy.data.images.new(f"{target.name}_basecolor", size, size, alpha=False)
    material = bpy.data.materials.new(f"{target.name}_baked")
    tree = node_tree(material)
    texture_node = tree.nodes.new("ShaderNodeTexImage")
    texture_node.image = image  # type: ignore[attr-defined]
    bsdf: Any = tree.nodes.get("Principled BSDF")
    tree.nodes.active = texture_node  # the bake target; linked to the shader only after the bake,
    # or Cycles would read the image it is writing ("circular dependency")
    cycles: Any = scene.cycles  # type: ignore[attr-defined]  # registered by the Cycles add-on
    mesh = target.data
    assert isinstance(mesh, bpy.types.Mesh)
    mesh.materials.clear()
    mesh.materials.append(material)
    render: Any = scene.render
    saved = (render.engine, cycles.device, cycles.samples)
    render.engine = "CYCLES"
    cycles.device = "CPU"
    cycles.samples = 1
    bake = scene.render.bake
    size_m = max(target.dimensions[:]) or 1.0
    view_layer = bpy.context.view_layer
    assert view_layer is not None
    for obj in view_layer.objects:
        obj.select_set(False)
    source.select_set(True)
    target.select_set(True)
    view_layer.objects.active = target
    started = time.perf_counter()
    try:
        with _override(target, source), quiet_stdout():
            result = bpy.ops.object.bake(type="DIFFUSE", pass_filter={"COLOR"}, use_selected_to_active=True,
                                         cage_extrusion=0.02 * size_m, max_ray_distance=0.1 * size_m, margin=4)
        if result != {"FINISHED"}:
            raise RuntimeError("Cycles could not bake the colour")
        if bsdf is not None:
            tree.links.new(texture_node.outputs["Color"], bsdf.inputs["Base Color"])
    finally:
        render.engine, cycles.device, cycles.samples = saved
        bake.use_selected_to_active = False
    image.pack()
    return {"bake_size": size, "bake_s": round(time.perf_counter() - started, 3)}


def power_of_two_textures(obj: bpy.types.Object, limit: int) -> dict[str, Any]:
    """Resize every texture the object uses to power-of-two sides no larger than `limit`."""
    sizes = []
    for image in material_images(obj):
        width, height = (int(v) for v in image.size)  # type: ignore[attr-defined]
        if width == 0 or height == 0:
            continue
        new_w, new_h = _pow2_at_most(width, limit), _pow2_at_most(height, limit)
        if (new_w, new_h) != (width, height):
            image.scale(new_w, new_h)
            image.pack()
        sizes.append([new_w, new_h])
    return {"textures": sizes}


def _pow2_at_most(value: int, limit: int) -> int:
    nearest = 1 << max(0, value.bit_length() - 1)
    if nearest * 1.5 <= value:  # round to the nearer power of two, not always down
        nearest *= 2
    return min(nearest, limit)


def material_images(obj: bpy.types.Object) -> list[bpy.types.Image]:
    """Every image a node of the object's materials uses, once."""
    images: list[bpy.types.Image] = []
    for slot in obj.material_slots:
        material = slot.material
        if material is None or material.node_tree is None:
            continue
        for node in material.node_tree.nodes:
            image = getattr(node, "image", None)
            if isinstance(image, bpy.types.Image) and image not in images:
                images.append(image)
    return images


def make_lods(obj: bpy.types.Object, asset: str, ratios: tuple[float, ...]) -> list[str]:
    """LOD0…LODn named `<asset>_LODn` under an empty named `<asset>`, as game engines expect."""
    collection = obj.users_collection[0]
    obj.name = f"{asset}_LOD0"  # first, so the group can take the asset's name
    group = bpy.data.objects.new(asset, None)
    collection.objects.link(group)
    group["kiln_lod_group"] = True
    group["kiln_option"] = obj.get("kiln_option", 0)  # keeps the group in its option's row
    view_layer = bpy.context.view_layer
    if view_layer is not None:
        view_layer.update()
    world = obj.matrix_world.copy()
    if obj.parent is not None:  # a part of a segmented asset: the LOD group takes its place
        group.parent = obj.parent
    group.matrix_world = world
    obj.parent = group
    obj.matrix_world = world
    names = [obj.name]
    for level, ratio in enumerate(ratios, start=1):
        mesh = obj.data
        assert isinstance(mesh, bpy.types.Mesh)
        lod = obj.copy()
        lod_mesh = mesh.copy()
        assert lod is not None and lod_mesh is not None
        lod.data = lod_mesh
        if lod.asset_data is not None:
            lod.asset_clear()
        for key in [k for k in lod.keys() if k.startswith("kiln_")]:  # noqa: SIM118 - ID blocks only offer keys()
            del lod[key]
        collection.objects.link(lod)
        lod.name = f"{asset}_LOD{level}"
        lod_mesh.name = lod.name
        _apply_modifier(lod, "DECIMATE", decimate_type="COLLAPSE", ratio=ratio)  # before hiding: a
        # viewport-disabled object is not evaluated, so the decimation would read nothing
        lod["kiln_lod"] = level
        hide_lod(lod)
        names.append(lod.name)
    return names


def hide_lod(lod: bpy.types.Object) -> None:
    """LOD1… stay in the file for export but out of sight: one mesh shows per asset, not three stacked.

    `hide_viewport` (not `hide_set`): it is a flag of the object itself, so it survives saving, a
    headless run and appending the asset into another file, where a view layer's eye icon is lost.
    The exporter shows them again while it writes, so engines get every LOD visible."""
    lod.hide_viewport = True
    lod.hide_render = True


def apply_theme(obj: bpy.types.Object, material: bpy.types.Material) -> dict[str, Any]:
    mesh = obj.data
    assert isinstance(mesh, bpy.types.Mesh)
    mesh.materials.clear()
    mesh.materials.append(material)
    return {"theme": material.name}


def theme_material(batch: str, tint: tuple[float, float, float], roughness: float = 0.7,
                   noise: float = 0.0) -> bpy.types.Material:
    """One shared material for a whole batch: a base-colour tint, roughness and optional noise."""
    name = f"theme_{batch}"
    material = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    tree = node_tree(material)
    bsdf: Any = tree.nodes.get("Principled BSDF")
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = (*tint, 1.0)
        bsdf.inputs["Roughness"].default_value = roughness
        if noise > 0 and not tree.nodes.get("kiln_noise"):
            texture = tree.nodes.new("ShaderNodeTexNoise")
            texture.name = "kiln_noise"
            mix: Any = tree.nodes.new("ShaderNodeMix")
            mix.data_type = "RGBA"
            mix.blend_type = "MULTIPLY"
            mix.inputs["Factor"].default_value = noise
            mix.inputs[6].default_value = (*tint, 1.0)
            tree.links.new(texture.outputs["Color"], mix.inputs[7])
            tree.links.new(mix.outputs[2], bsdf.inputs["Base Color"])
    material["kiln_theme"] = batch
    return material


def finish_result(job: Job, batch: BatchSpec) -> FinishReport | None:
    """Finish the object imported for `job` with its batch's preset (the pump calls this)."""
    from .importer import find_result

    obj = find_result(job.job_id)
    if obj is None or batch.finish is None:
        return None
    # A provider that textured the batch's theme itself (Tripo's texture route) must keep its texture: the
    # Blender theme material is for backends that cannot texture.
    textured_by_provider = bool(job.spec.params_dict.get(THEME_PROMPT))
    theme = theme_material(batch.name, batch.theme.tint, batch.theme.roughness, batch.theme.noise) \
        if batch.theme is not None and not textured_by_provider else None
    report = finish_object(obj, batch.finish, game=batch.target == "game", theme=theme)
    job.metadata["finish"] = report.to_json()
    root = obj
    while root.parent is not None:
        root = root.parent
    settle(root)  # remeshing or a target height can grow an asset into its neighbours
    return report


def finish_object(obj: bpy.types.Object, preset: FinishPreset, *, game: bool = True,
                  theme: bpy.types.Material | None = None) -> FinishReport:
    """Run `preset` on one asset. LODs only for the game target."""
    started = time.perf_counter()
    asset = obj.name
    report = FinishReport(asset=asset, preset=preset.name)
    remeshed = False

    def step(name: str, action: Callable[[], dict[str, Any]]) -> None:
        backup = obj.data.copy() if isinstance(obj.data, bpy.types.Mesh) else None
        try:
            report.steps.append(StepReport(name, True, action()))
        except Exception as exc:
            _log.warning("finishing %s: %s failed: %s", asset, name, exc)
            if backup is not None:
                broken = obj.data
                obj.data = backup
                backup = None
                if isinstance(broken, bpy.types.Mesh) and broken.users == 0:
                    bpy.data.meshes.remove(broken)
            report.steps.append(StepReport(name, False, error=str(exc).strip()[:300]))
        finally:
            if backup is not None and backup.users == 0:
                bpy.data.meshes.remove(backup)

    if preset.apply_transforms:
        step("transforms", lambda: _transforms(obj, preset.height_m))
    source = None
    if preset.remesh != "keep":
        source = obj.copy()
        assert source is not None and obj.data is not None
        source.data = obj.data.copy()
        obj.users_collection[0].objects.link(source)
        before = face_count(obj)
        step("remesh", lambda: _remesh(obj, preset))
        remeshed = report.steps[-1].ok
        report.steps[-1].detail.setdefault("faces_before", before)
    if preset.face_budget:
        step("decimate", lambda: decimate_to(obj, preset.face_budget))
    needs_uv = preset.uv in ("smart", "lightmap") or (preset.uv == "auto" and (remeshed or not _has_uvs(obj)))
    if needs_uv:
        step("uv", lambda: unwrap(obj, "lightmap" if preset.uv == "lightmap" else "smart"))
    if remeshed and preset.bake and source is not None:
        baked_source = source
        step("bake", lambda: bake_colour(baked_source, obj, preset.bake_size))
    if source is not None:
        source_mesh = source.data
        bpy.data.objects.remove(source, do_unlink=True)
        if isinstance(source_mesh, bpy.types.Mesh) and source_mesh.users == 0:
            bpy.data.meshes.remove(source_mesh)
    if theme is not None:
        step("theme", lambda: apply_theme(obj, theme))
    if preset.texture_size:
        step("textures", lambda: power_of_two_textures(obj, preset.texture_size))
    if game and preset.lod_ratios:
        try:
            report.lods = make_lods(obj, asset, preset.lod_ratios)
            report.steps.append(StepReport("lods", True, {"lods": report.lods}))
        except Exception as exc:
            report.steps.append(StepReport("lods", False, error=str(exc)[:300]))
    obj["kiln_finished"] = preset.name
    report.seconds = time.perf_counter() - started
    return report


def _transforms(obj: bpy.types.Object, height_m: float) -> dict[str, Any]:
    bake_transform(obj, keep_heading=True)
    if height_m > 0 and obj.dimensions.z > 0:
        factor = height_m / obj.dimensions.z
        mesh = obj.data
        assert isinstance(mesh, bpy.types.Mesh)
        from mathutils import Matrix

        mesh.transform(Matrix.Scale(factor, 4))
    location = obj.location.copy()
    origin_to_bottom_centre(obj)
    moved = obj.location - location
    return {"height_m": round(obj.dimensions.z, 4), "moved_origin": [moved.x, moved.y, moved.z]}


def _closed_surface_for_quadriflow(obj: bpy.types.Object) -> None:
    """Give QuadriFlow the one input it accepts: a single closed, consistently wound surface with no
    edge shorter than 0.1 mm (Blender refuses shorter ones as degenerate). Generated models are often
    many separate, overlapping pieces (planks, hoops, bolts): on those QuadriFlow either refuses or runs
    for many minutes. A voxel remesh at the organic preset's resolution fuses the pieces into one shell,
    and collapsing its rare sliver edges removes the degenerate ones it can leave."""
    voxel = max(obj.dimensions[:]) / VOXEL_RESOLUTION
    _apply_modifier(obj, "REMESH", mode="VOXEL", voxel_size=voxel, use_smooth_shade=True)
    mesh = obj.data
    assert isinstance(mesh, bpy.types.Mesh)
    bm = bmesh.new()
    try:
        bm.from_mesh(mesh)
        bmesh.ops.remove_doubles(bm, verts=list(bm.verts), dist=QUADRIFLOW_MIN_EDGE_M)
        bm.to_mesh(mesh)
    finally:
        bm.free()
    mesh.update()


def _remesh(obj: bpy.types.Object, preset: FinishPreset) -> dict[str, Any]:
    before = face_count(obj)
    if preset.remesh == "voxel":
        voxel = max(obj.dimensions[:]) / VOXEL_RESOLUTION
        _apply_modifier(obj, "REMESH", mode="VOXEL", voxel_size=voxel, use_smooth_shade=True)
    elif preset.remesh == "quadriflow":
        _closed_surface_for_quadriflow(obj)
        with _override(obj):
            result = bpy.ops.object.quadriflow_remesh(target_faces=max(100, preset.face_budget or 4000),
                                                      use_preserve_sharp=True, use_mesh_symmetry=False)
        if result != {"FINISHED"}:
            raise RuntimeError("QuadriFlow could not remesh this mesh (it needs a closed manifold)")
    return {"remesh": preset.remesh, "faces_before": before, "faces_after": face_count(obj)}
