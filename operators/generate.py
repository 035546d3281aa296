# mypy: disable-error-code="union-attr,attr-defined,override,arg-type"
"""kiln.generate: a text prompt becomes job(s) in the current mode."""

from __future__ import annotations

import logging
import os

import bpy

from ..addon.backends import AVAILABLE, BackendInfo
from ..addon.blender import runtime
from ..addon.blender.images import prepare_image
from ..addon.jobs import Mode
from ..addon.modes import image_spec, text_specs
from ..addon.validation import InputError, check_network, clean_prompt

_log = logging.getLogger(__name__)


def selected_backend(settings: bpy.types.PropertyGroup) -> BackendInfo:
    """The panel's backend, if it may run now; otherwise an InputError saying why."""
    info = next((b for b in AVAILABLE if b.name == settings.backend), None)
    if info is None:
        raise InputError(f"Backend '{settings.backend}' is not available")
    check_network(info.label, info.needs_network, bpy.app.online_access)
    return info


def selected_mode(settings: bpy.types.PropertyGroup) -> Mode:
    return Mode.PRODUCTION if settings.mode == "PRODUCTION" else Mode.DRAFT


class KILN_OT_generate(bpy.types.Operator):
    """Generate a 3D model from the prompt, in the current mode (Draft or Production)"""

    bl_idname = "kiln.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER"}

    prompt: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Prompt", description="Overrides the panel's prompt when set", options={"SKIP_SAVE"}
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if not runtime.is_running():
            cls.poll_message_set("Kiln's engine is not running; re-enable the add-on")
            return False
        return context.scene is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.kiln
        try:
            prompt = clean_prompt(self.prompt or settings.prompt)
            info = selected_backend(settings)
        except InputError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        mode = selected_mode(settings)
        specs = text_specs(prompt, mode=mode, backend=info.name, options=settings.options, seed=settings.seed)
        jobs = runtime.scheduler().add_many(specs)
        failed = [j for j in jobs if j.error is not None]
        if failed:
            self.report({"ERROR"}, failed[0].error.message if failed[0].error else "could not queue")
            return {"CANCELLED"}
        noun = "job" if len(jobs) == 1 else "jobs"
        self.report({"INFO"}, f"Kiln: queued {len(jobs)} {mode.value} {noun} for '{prompt}' on {info.label}")
        return {"FINISHED"}


class KILN_OT_generate_from_images(bpy.types.Operator):
    """Generate one model per chosen reference image, in the current mode"""

    bl_idname = "kiln.generate_from_images"
    bl_label = "Generate from Images"
    bl_options = {"REGISTER"}

    filepath: bpy.props.StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    directory: bpy.props.StringProperty(subtype="DIR_PATH", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    files: bpy.props.CollectionProperty(  # type: ignore[valid-type]
        type=bpy.types.OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"}
    )
    filter_image: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})  # type: ignore[valid-type]
    filter_folder: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return KILN_OT_generate.poll(context)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def chosen_paths(self) -> list[str]:
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
        mode = selected_mode(settings)
        specs, skipped, notes = [], [], []
        for index, path in enumerate(paths):
            try:
                prepared = prepare_image(path, runtime.inputs_folder())
            except InputError as exc:
                skipped.append(str(exc))
                continue
            notes += prepared.notes
            specs.append(image_spec(prepared.source, prepared.prepared, mode=mode, backend=info.name,
                                    seed=settings.seed, index=index))
        for message in skipped:
            self.report({"WARNING"}, f"Skipped {message}")
        for note in notes:
            self.report({"INFO"}, note)
        if not specs:
            self.report({"ERROR"}, f"No usable image: {skipped[0]}" if skipped else "No usable image")
            return {"CANCELLED"}
        runtime.scheduler().add_many(specs)
        self.report({"INFO"}, f"Kiln: queued {len(specs)} image job(s), skipped {len(skipped)}")
        return {"FINISHED"}


classes = (KILN_OT_generate, KILN_OT_generate_from_images)
register, unregister = bpy.utils.register_classes_factory(classes)
