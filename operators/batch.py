# mypy: disable-error-code="union-attr,attr-defined,override,arg-type,unreachable"
"""Operators that queue several jobs at once: variations, reference images, parts, the camera view."""

from __future__ import annotations

import os
import time
from typing import Any

import bpy

from ..addon.blender import runtime
from ..addon.blender.capture import capture_camera, capture_folder
from ..addon.blender.images import prepare_image
from ..addon.jobs import BatchSpec, Priority
from ..addon.modes import image_spec, new_seed, parts_specs, text_specs
from ..addon.naming import next_batch_name, slug
from ..addon.presets import PRESETS
from ..addon.validation import InputError, clean_prompt
from .generate import engine_ready, selected_backend, selected_mode


def _batch_settings(context: bpy.types.Context, prefix: str) -> BatchSpec:
    """A new batch from the panel's batch fields, named by the convention (env_<prefix>_01 …)."""
    settings = context.scene.kiln
    existing = {c.name for c in bpy.data.collections} | set(runtime.scheduler().batches)
    name = slug(settings.batch_name) if settings.batch_name.strip() else next_batch_name(f"env_{prefix}", existing)
    production = selected_mode(settings).value == "production"
    return BatchSpec(
        name,
        priority=Priority[settings.priority],
        start_at=time.time() + settings.start_in_hours * 3600 if settings.start_in_hours else None,
        budget=settings.budget or None,
        finish=PRESETS.get(settings.finish_preset) if production else None,
        target=settings.target.lower(),
    )


def _list_ready(operator: type[bpy.types.Operator], items: Any, message: str) -> bool:
    """Shared poll for list-driven operators: the engine runs and the list has a non-empty line."""
    if not engine_ready(operator):
        return False
    if not any(item.text.strip() for item in items):
        operator.poll_message_set(message)
        return False
    return True


class KILN_OT_batch_prompts(bpy.types.Operator):
    """Queue a batch: the base prompt with each variation, times the options per prompt"""

    bl_idname = "kiln.batch_prompts"
    bl_label = "Queue Variations"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _list_ready(cls, context.scene.kiln.variations, "Add at least one variation to the list")

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.kiln
        try:
            base = clean_prompt(settings.batch_base)
            info = selected_backend(settings)
            variations = [clean_prompt(item.text) for item in settings.variations if item.text.strip()]
        except InputError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        batch = _batch_settings(context, slug(base, 24))
        scheduler = runtime.scheduler()
        scheduler.add_batch(batch)
        specs = []
        for index, variation in enumerate(variations):
            specs += text_specs(f"{base} {variation}", mode=selected_mode(settings), backend=info.name,
                                options=settings.options, seed=settings.seed, batch=batch.name, index=index)
        scheduler.add_many(specs)
        self.report({"INFO"}, f"Kiln: queued batch {batch.name}: {len(specs)} job(s)")
        return {"FINISHED"}


class KILN_OT_batch_images(bpy.types.Operator):
    """Queue one job per chosen reference image; unreadable files are listed and skipped"""

    bl_idname = "kiln.batch_images"
    bl_label = "Generate from Images"
    bl_options = {"REGISTER"}

    filepath: bpy.props.StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    directory: bpy.props.StringProperty(subtype="DIR_PATH", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    files: bpy.props.CollectionProperty(  # type: ignore[valid-type]
        type=bpy.types.OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})
    use_image_datablocks: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Use Image Data-Blocks", description="Use the images selected in Blender (names below) instead",
        options={"SKIP_SAVE"})
    image_names: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Images", description="Comma-separated names of image data-blocks", options={"SKIP_SAVE"})
    filter_image: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})  # type: ignore[valid-type]
    filter_folder: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return engine_ready(cls)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def chosen_paths(self) -> list[str]:
        if self.image_names:
            paths = []
            for name in (n.strip() for n in self.image_names.split(",")):
                image = bpy.data.images.get(name)
                paths.append(bpy.path.abspath(image.filepath) if image and image.filepath else name)
            return paths
        if self.files and self.directory:
            return [os.path.join(self.directory, f.name) for f in self.files if f.name]
        return [self.filepath] if self.filepath else []

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.kiln
        paths = self.chosen_paths()
        try:
            if not paths:
                raise InputError("Choose one or more reference images")
            info = selected_backend(settings)
        except InputError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        specs, skipped = [], []
        for index, path in enumerate(paths):
            try:
                prepared = prepare_image(path, runtime.inputs_folder())
            except InputError as exc:
                skipped.append(str(exc))
                continue
            for note in prepared.notes:
                self.report({"INFO"}, note)
            for option in range(settings.options):
                specs.append(image_spec(prepared.source, prepared.prepared, mode=selected_mode(settings),
                                        backend=info.name, seed=(settings.seed or new_seed()) + option,
                                        index=index, option=option))
        for message in skipped:
            self.report({"WARNING"}, f"Skipped {message}")
        if not specs:
            self.report({"ERROR"}, f"No usable image: {skipped[0]}" if skipped else "No usable image")
            return {"CANCELLED"}
        runtime.scheduler().add_many(specs)
        self.report({"INFO"}, f"Kiln: queued {len(specs)} image job(s), skipped {len(skipped)}")
        return {"FINISHED"}


class KILN_OT_generate_parts(bpy.types.Operator):
    """Generate each part in the list as its own job, assembled under one parent in part order"""

    bl_idname = "kiln.generate_parts"
    bl_label = "Generate Parts"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _list_ready(cls, context.scene.kiln.parts, "Add the parts to the list first (head, torso, legs …)")

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.kiln
        try:
            info = selected_backend(settings)
            parts = [clean_prompt(item.text) for item in settings.parts if item.text.strip()]
            prefix = " ".join(settings.prompt.split())
        except InputError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        batch = _batch_settings(context, slug(prefix or "parts", 24))
        runtime.scheduler().add_batch(batch)
        mode = selected_mode(settings)
        specs = parts_specs(prefix, parts, mode=mode, backend=info.name, seed=settings.seed or new_seed(),
                            batch=batch.name)
        runtime.scheduler().add_many(specs)
        self.report({"INFO"}, f"Kiln: queued {len(specs)} part(s) as {batch.name}_001")
        return {"FINISHED"}


class KILN_OT_generate_from_camera(bpy.types.Operator):
    """Render the active camera's view and generate a model from it"""

    bl_idname = "kiln.generate_from_camera"
    bl_label = "Generate from Camera"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if not engine_ready(cls):
            return False
        if context.scene is None or context.scene.camera is None:
            cls.poll_message_set("The scene has no active camera")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.kiln
        try:
            info = selected_backend(settings)
            path, seconds = capture_camera(context.scene, capture_folder(), settings.capture_engine)
            prepared = prepare_image(path, runtime.inputs_folder())
        except InputError as exc:
            message = str(exc)
            if "no subject" in message or "fills the whole frame" in message:
                message = "The camera sees nothing to generate from (empty view): frame an object first"
            self.report({"ERROR"}, message)
            return {"CANCELLED"}
        spec = image_spec(prepared.source, prepared.prepared, mode=selected_mode(settings), backend=info.name,
                          seed=settings.seed)
        runtime.scheduler().add(spec)
        self.report({"INFO"}, f"Kiln: captured the camera in {seconds * 1000:.0f} ms and queued 1 job")
        return {"FINISHED"}


class KILN_OT_list_edit(bpy.types.Operator):
    """Add or remove a line in a Kiln list"""

    bl_idname = "kiln.list_edit"
    bl_label = "Edit List"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    target: bpy.props.EnumProperty(items=[("variations", "Variations", ""), ("parts", "Parts", "")])  # type: ignore[valid-type]
    action: bpy.props.EnumProperty(items=[("ADD", "Add", ""), ("REMOVE", "Remove", "")])  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.kiln
        items = getattr(settings, self.target)
        index_name = f"{self.target}_index"
        if self.action == "ADD":
            items.add()
            setattr(settings, index_name, len(items) - 1)
        elif len(items):
            index = min(getattr(settings, index_name), len(items) - 1)
            items.remove(index)
            setattr(settings, index_name, max(0, index - 1))
        return {"FINISHED"}


classes = (KILN_OT_batch_prompts, KILN_OT_batch_images, KILN_OT_generate_parts, KILN_OT_generate_from_camera,
           KILN_OT_list_edit)
register, unregister = bpy.utils.register_classes_factory(classes)
