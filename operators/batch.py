# mypy: disable-error-code="attr-defined,override,unreachable"
"""Operators that queue several jobs at once: variations, reference images, parts, the camera view."""

from __future__ import annotations

import os
from pathlib import Path

import bpy

from ..addon import preflight
from ..addon.blender.capture import capture_camera, capture_depth, capture_folder
from ..addon.blender.framing import framing_findings
from ..addon.blender.panel import (
    camera_subjects,
    is_reference_image,
    panel_request,
    parts_problem,
    prepare_for,
    prepare_reference,
    queue,
    reference_view,
    scene_settings,
    taken_names,
    variations_problem,
)
from ..addon.requests import (
    PreparedInput,
    camera_request,
    image_request,
    multiview_request,
    parts_request,
    prompt_batch_request,
)
from ..addon.validation import InputError, clean_prompt
from .generate import affordable_property, engine_ready, prompts_preflight, report_queued, selected_backend


def _lists_ready(operator: type[bpy.types.Operator], problem: str | None) -> bool:
    """Shared poll for list-driven operators: the engine and backend run, and the lists make valid prompts."""
    if not engine_ready(operator):
        return False
    if problem is not None:
        operator.poll_message_set(problem)
        return False
    return True


class KILN_OT_batch_prompts(bpy.types.Operator):
    """Queue a batch: the base prompt with each variation, times the options per prompt"""

    bl_idname = "kiln.batch_prompts"
    bl_label = "Queue Variations"
    bl_options = {"REGISTER"}

    only_affordable: affordable_property()  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _lists_ready(cls, variations_problem(scene_settings(context.scene)))

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = scene_settings(context.scene)
        try:
            base = clean_prompt(settings.batch_base)
            info = selected_backend(settings)
            variations = [clean_prompt(item.text) for item in settings.variations if item.text.strip()]
            request = prompt_batch_request(panel_request(context.scene, backend=info.name), base, variations,
                                           taken_names())
            findings = prompts_preflight(settings, info.name, [spec.prompt for spec in request.specs],
                                         settings.negative_prompt)
        except InputError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return report_queued(self, request, queue(request, self.only_affordable),
                             f"'{base}' with {len(variations)} variation(s)", findings)


def _selected_references(context: bpy.types.Context) -> list[bpy.types.Object]:
    return sorted((o for o in context.selected_objects if is_reference_image(o)), key=lambda o: o.name)


class KILN_OT_batch_images(bpy.types.Operator):
    """Generate from the reference images selected in the viewport (image empties), or from image files.
    One job per image; with "Views of One Subject", a turnaround of references becomes one multiview job"""

    bl_idname = "kiln.batch_images"
    bl_label = "Generate from Images"
    bl_options = {"REGISTER"}

    filepath: bpy.props.StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    directory: bpy.props.StringProperty(subtype="DIR_PATH", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    files: bpy.props.CollectionProperty(  # type: ignore[valid-type]
        type=bpy.types.OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})
    image_names: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Images", description="Comma-separated names of image data-blocks", options={"SKIP_SAVE"})
    as_views: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Views of One Subject",
        description="The selected references are views of one subject (front, side, back), placed as a "
                    "turnaround: make one multiview job, each view named by the way its reference faces",
        default=False)
    skip_flagged: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Skip Images with Warnings",
        description="Leave out the images the pre-flight warns about (busy background, cropped subject, blur …) "
                    "instead of sending them anyway", default=False, options={"SKIP_SAVE"})
    only_affordable: affordable_property()  # type: ignore[valid-type]
    filter_image: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})  # type: ignore[valid-type]
    filter_folder: bpy.props.BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return engine_ready(cls)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if _selected_references(context) or context.window_manager is None:
            return self.execute(context)  # the selection is the input; no file browser needed
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def _files(self) -> list[str]:
        if self.files and self.directory:
            return [os.path.join(self.directory, f.name) for f in self.files if f.name]
        return [self.filepath] if self.filepath else []

    def _gather(self, context: bpy.types.Context, backend: str
                ) -> tuple[list[PreparedInput], list[str], list[list[preflight.Finding]]]:
        """The chosen images, read and pre-flighted for `backend`; unreadable ones (and those it cannot
        use) are listed, not fatal. The third list holds each kept image's findings."""
        inputs: list[PreparedInput] = []
        skipped: list[str] = []
        findings: list[list[preflight.Finding]] = []
        if self.image_names:
            for name in (n.strip() for n in self.image_names.split(",") if n.strip()):
                image = bpy.data.images.get(name)
                try:
                    if image is None:
                        raise InputError(f"'{name}': there is no image data-block with that name")
                    path = bpy.path.abspath(image.filepath) if image.filepath else name
                    prepared = prepare_for(path, backend)
                    inputs.append(PreparedInput(prepared.source, prepared.prepared, label=name))
                    findings.append(prepared.findings)
                except InputError as exc:
                    skipped.append(str(exc))
            return inputs, skipped, findings
        paths = self._files()
        if paths:
            for path in paths:
                try:
                    prepared = prepare_for(path, backend)
                    inputs.append(PreparedInput(prepared.source, prepared.prepared, label=Path(path).stem))
                    findings.append(prepared.findings)
                except InputError as exc:
                    skipped.append(str(exc))
            return inputs, skipped, findings
        for obj in _selected_references(context):
            view = (reference_view(obj) or "") if self.as_views else "image"
            if self.as_views and not view:
                skipped.append(f"'{obj.name}' faces up or down, not front, side or back")
                continue
            try:
                reference, found = prepare_reference(obj, view, backend)
                inputs.append(reference)
                findings.append(found)
            except InputError as exc:
                skipped.append(f"'{obj.name}': {exc}")
        return inputs, skipped, findings

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            info = selected_backend(scene_settings(context.scene))
        except InputError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        inputs, skipped, findings = self._gather(context, info.name)
        for message in skipped:
            self.report({"WARNING"}, f"Skipped {message}")
        # The batch at a glance ("3 of 20 images: busy background"), then, if asked, without those images.
        for line in preflight.summarize([(i.label, f) for i, f in zip(inputs, findings, strict=True)]):
            self.report({"WARNING"}, f"Kiln: {line}")
        if self.skip_flagged and not self.as_views:
            flagged = [i.label for i, f in zip(inputs, findings, strict=True) if preflight.warnings(f)]
            inputs = [i for i, f in zip(inputs, findings, strict=True) if not preflight.warnings(f)]
            if flagged:
                self.report({"WARNING"}, f"Kiln: skipped {len(flagged)} image(s) with warnings: {', '.join(flagged)}")
                skipped += flagged
        if not inputs:
            hint = skipped[0] if skipped else ("select reference images in the viewport (Add ▸ Image ▸ Reference) "
                                               "or choose image files")
            self.report({"ERROR"}, f"No usable image: {hint}")
            return {"CANCELLED"}
        panel = panel_request(context.scene, backend=info.name)
        if self.as_views:
            views = {i.view for i in inputs}
            if len(views) != len(inputs) or "front" not in views or len(inputs) < 2:
                faced = ", ".join(f"{i.label} → {i.view}" for i in inputs)
                self.report({"ERROR"}, "Views of one subject need a front reference (facing -Y) and at least one "
                                       f"side or back, each facing a different way; got {faced}")
                return {"CANCELLED"}
            request = multiview_request(panel, inputs, taken_names())
            return report_queued(self, request, queue(request, self.only_affordable),
                                 f"{len(inputs)} views of one subject")
        request = image_request(panel, inputs, taken_names())
        return report_queued(self, request, queue(request, self.only_affordable),
                             f"{len(inputs)} image(s)" + (f", skipped {len(skipped)}" if skipped else ""))


class KILN_OT_generate_parts(bpy.types.Operator):
    """Generate each part in the list as its own job, assembled under one parent in part order.
    Each part is sent after the Batch panel's base prompt ("sci-fi robot" + "head"), as the panel shows"""

    bl_idname = "kiln.generate_parts"
    bl_label = "Generate Parts"
    bl_options = {"REGISTER"}

    only_affordable: affordable_property()  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _lists_ready(cls, parts_problem(scene_settings(context.scene)))

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = scene_settings(context.scene)
        try:
            info = selected_backend(settings)
            parts = [clean_prompt(item.text) for item in settings.parts if item.text.strip()]
            # The base prompt of the same panel, shown there with what each part sends; never the main
            # prompt of another panel, which an artist would not expect to travel with the parts.
            prefix = " ".join(settings.batch_base.split())
            request = parts_request(panel_request(context.scene, backend=info.name), prefix, parts, taken_names())
            findings = prompts_preflight(settings, info.name, [spec.prompt for spec in request.specs])
        except InputError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return report_queued(self, request, queue(request, self.only_affordable), f"{len(parts)} part(s)",
                             findings)


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
        scene = context.scene
        try:
            settings = scene_settings(scene)
            info = selected_backend(settings)
            if scene is None or scene.camera is None:
                raise InputError("The scene has no active camera: add one, or set one with Ctrl+Numpad 0")
            camera = scene.camera
            framing = framing_findings(scene)  # before rendering: an empty or distant view is said at once
            hard = preflight.errors(framing)
            if hard:
                raise InputError(hard[0].line)
            path, seconds = capture_camera(scene, capture_folder(), settings.capture_engine)
            prepared = prepare_for(path, info.name)
            depth = ""
            if info.name == "local":  # the local engine builds from the scene's depth; providers get the image
                depth_path, depth_seconds = capture_depth(scene, capture_folder())
                depth, seconds = str(depth_path), seconds + depth_seconds
        except InputError as exc:
            message = str(exc)
            if "no subject" in message or "fills the whole frame" in message:
                message = "The camera sees nothing to generate from (empty view): frame an object first"
            self.report({"ERROR"}, message)
            return {"CANCELLED"}
        image = PreparedInput(prepared.source, prepared.prepared, label=f"camera_{camera.name}",
                              beside=camera_subjects(scene))
        request = camera_request(panel_request(scene, backend=info.name), image, camera.name, taken_names(),
                                 depth=depth)
        return report_queued(self, request, queue(request),
                             f"the camera view (captured in {seconds * 1000:.0f} ms)", framing + prepared.findings)


class KILN_OT_list_edit(bpy.types.Operator):
    """Add or remove a line in a Kiln list"""

    bl_idname = "kiln.list_edit"
    bl_label = "Edit List"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    target: bpy.props.EnumProperty(items=[("variations", "Variations", ""), ("parts", "Parts", "")])  # type: ignore[valid-type]
    action: bpy.props.EnumProperty(items=[("ADD", "Add", ""), ("REMOVE", "Remove", "")])  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = scene_settings(context.scene)
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
