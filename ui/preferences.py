# mypy: disable-error-code="union-attr,attr-defined,override,arg-type"
"""Add-on preferences: keys, folders, concurrency. Keys live in Blender's user preferences, never in a .blend."""

from __future__ import annotations

import bpy

from .. import __package__ as base_package


class KILN_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = base_package

    tripo_api_key: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Tripo API key",
        description="Your Tripo key (tsk_…). The environment variable TRIPO_API_KEY wins over this field",
        subtype="PASSWORD",
    )
    meshy_api_key: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Meshy API key",
        description="Your Meshy key (msy_…). The environment variable MESHY_API_KEY wins over this field",
        subtype="PASSWORD",
    )
    draft_reserved_slots: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Slots reserved for drafts",
        description="Concurrency slots per backend that production batches leave free, so a draft never waits",
        default=1,
        min=0,
        max=4,
    )
    request_timeout_s: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Network timeout",
        description="Seconds to wait for a provider before treating a request as failed",
        default=30.0,
        min=5.0,
        max=300.0,
        subtype="TIME_ABSOLUTE",
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        col = layout.column(heading="API keys")
        col.prop(self, "tripo_api_key")
        col.prop(self, "meshy_api_key")
        col = layout.column(heading="Scheduling")
        col.prop(self, "draft_reserved_slots")
        col.prop(self, "request_timeout_s")
        if not bpy.app.online_access:
            layout.label(text="Online access is off: only the Local backend will run", icon="INFO")


classes = (KILN_AddonPreferences,)
register, unregister = bpy.utils.register_classes_factory(classes)
