# mypy: disable-error-code="attr-defined,override,unreachable"
"""kiln.generate: a text prompt becomes job(s) in the current mode."""

from __future__ import annotations

import logging
from typing import Any

import bpy

from ..addon import preflight
from ..addon.backends import registry
from ..addon.backends.registry import BackendInfo
from ..addon.blender import runtime
from ..addon.blender.panel import (
    backend_problem,
    engine_problem,
    panel_request,
    prompt_findings,
    prompt_problem,
    queue,
    scene_prompt_findings,
    scene_settings,
    taken_names,
)
from ..addon.jobs import Mode
from ..addon.requests import Request, text_request
from ..addon.validation import InputError, check_network, clean_negative_prompt, clean_prompt
from ..ui.preferences import installed_engine_settings, refresh_engine_settings

_log = logging.getLogger(__name__)


def selected_backend(settings: bpy.types.PropertyGroup) -> BackendInfo:
    """The panel's backend, if it may run now; otherwise an InputError saying why (offline, no key)."""
    return backend_ready(str(settings.backend))


def backend_ready(name: str) -> BackendInfo:
    """The backend called `name`, if it may run now; otherwise an InputError saying why (offline, no key).
    The preferences and the environment are read again first: a key exported since the last edit of
    the preferences is used, and an unchanged one rebuilds nothing."""
    info = registry.find(name)
    if info is None:
        raise InputError(f"Backend '{name}' is not available")
    check_network(info.label, info.needs_network, bpy.app.online_access)
    runtime.settings_changed(installed_engine_settings())
    problem = runtime.backend_error(info.name)
    if problem is not None:
        raise InputError(problem.message)
    return info


def selected_mode(settings: bpy.types.PropertyGroup) -> Mode:
    return Mode.PRODUCTION if settings.mode == "PRODUCTION" else Mode.DRAFT


def engine_running(operator: type) -> bool:
    """Poll for queue controls: the engine runs and there is a scene; otherwise say why it is grey."""
    problem = engine_problem() or (None if bpy.context.scene is not None else "There is no scene")
    if problem is not None:
        operator.poll_message_set(problem)
        return False
    return True


def engine_ready(operator: type) -> bool:
    """Poll for generating: the engine runs and the panel's backend can run now (online access, key,
    endpoint); otherwise greyed out with the reason in the tooltip, rather than failing on click."""
    if not engine_running(operator):
        return False
    refresh_engine_settings()  # a key exported or typed since the last edit of the preferences counts
    scene = bpy.context.scene
    problem = backend_problem(str(scene.kiln.backend)) if scene is not None else None
    if problem is not None:
        operator.poll_message_set(problem)
        return False
    return True


def affordable_property() -> Any:
    """The option every queueing button has: queue only the leading jobs the balance pays for (the panel
    sets it on the button that says "Queue N of M that fit"); without it a request that does not fit is
    refused whole, with its shortfall."""
    return bpy.props.BoolProperty(
        name="Only What Fits", description="Queue only the jobs the credit balance (less the reserve for "
        "drafts) pays for, instead of refusing the whole request", default=False, options={"SKIP_SAVE"})


def report_findings(operator: bpy.types.Operator, findings: Any) -> None:
    """Warnings from the pre-flight, reported after queueing (errors never get this far; tips stay in the
    panel)."""
    for finding in preflight.warnings(findings):
        operator.report({"WARNING"}, f"Kiln: {finding.line}")


def prompts_preflight(settings: Any, backend: str, prompts: Any, negative: str = "") -> list[preflight.Finding]:
    """The pre-flight of every prompt a button sends: raises InputError on the first hard error, returns
    the rest once per kind (ten variations with the same vague base say it once)."""
    found: dict[str, preflight.Finding] = {}
    for prompt in prompts:
        for finding in prompt_findings(prompt, negative, backend, str(settings.mode).lower(),
                                       str(settings.target).lower()):
            if finding.severity is preflight.Severity.ERROR:
                raise InputError(f"{finding.line} ('{prompt[:40]}')")
            found.setdefault(finding.code, finding)
    return list(found.values())


class KILN_OT_generate(bpy.types.Operator):
    """Generate a 3D model from the prompt, in the current mode (Draft or Production)"""

    bl_idname = "kiln.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER"}

    prompt: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Prompt", description="Overrides the panel's prompt when set", options={"SKIP_SAVE"}
    )
    only_affordable: affordable_property()  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return engine_ready(cls)

    @classmethod
    def description(cls, context: bpy.types.Context, properties: bpy.types.OperatorProperties) -> str:
        """The tooltip says why the panel greyed the button: poll() cannot see the operator's own prompt,
        so the panel decides from the scene's prompt, and the tooltip says the same."""
        text = str(cls.__doc__ or "")
        scene = context.scene
        if scene is not None and not getattr(properties, "prompt", ""):
            problem = prompt_problem(scene.kiln.prompt, scene.kiln.negative_prompt, scene.kiln.backend)
            if problem is not None:
                text += f".\nDisabled: {problem}"
        return text

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = scene_settings(context.scene)
        try:
            info = selected_backend(settings)
            limits = info.capabilities.limits
            prompt = clean_prompt(self.prompt or settings.prompt, limits.prompt_max_chars)
            negative = clean_negative_prompt(settings.negative_prompt, limits.negative_prompt_max_chars)
        except InputError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        findings = scene_prompt_findings(settings) if not self.prompt else prompt_findings(
            prompt, negative, info.name, str(settings.mode).lower(), str(settings.target).lower())
        panel = panel_request(context.scene, backend=info.name, negative_prompt=negative)
        request = text_request(panel, prompt, taken_names())
        return report_queued(self, request, queue(request, self.only_affordable), f"'{prompt}' on {info.label}",
                             findings)


def report_queued(operator: bpy.types.Operator, request: Request, errors: list[str], what: str,
                  findings: Any = ()) -> set[str]:
    """One message for every generate button: what was queued, in which mode, and where it will land,
    then the pre-flight's warnings (the artist chose to go ahead; they still read what to fix)."""
    if errors:
        operator.report({"ERROR"}, errors[0])
        return {"CANCELLED"}
    report_findings(operator, findings)
    count = len(request.specs)
    noun = "job" if count == 1 else "jobs"
    if request.batch is not None:
        where = f"batch {request.batch.name}"
        if request.batch.finish is not None:
            where += f", finished with '{request.batch.finish.name}'"
    else:
        where = "Kiln Drafts"
    mode = request.specs[0].mode.value if request.specs else "draft"
    operator.report({"INFO"}, f"Kiln: queued {count} {mode} {noun} for {what} ({where})")
    return {"FINISHED"}


classes = (KILN_OT_generate,)
register, unregister = bpy.utils.register_classes_factory(classes)
