"""Layout helpers for the default sidebar width (about 280 px at UI scale 1), where a property's inline
label gets some 15 characters before Blender cuts it with "…": labels go on their own row above their
field, and sentences wrap onto as many label lines as they need."""

from __future__ import annotations

import textwrap
from typing import Any

import bpy

DEFAULT_SIDEBAR_PX = 280
"""The sidebar region's width at UI scale 1 when Blender opens it: what the layout is written for."""
PX_PER_CHAR = 6.2
"""An average character of Blender's UI font at scale 1, with a margin for capitals and digits. Measured
on Blender 4.3 at the default width: 37 characters of a plain label show, 34 after an icon."""
LABEL_MARGIN_PX = 60
"""What of the region's width a label cannot use: the panel's borders and the category tabs beside it."""
ICON_PX = 22
"""An icon's square before a label's text."""


def label_chars(context: Any, icon: bool = False) -> int:
    """How many characters a full-width label holds in the region being drawn (the default sidebar when
    Blender does not say: a script, a test), after an icon when `icon`."""
    region = getattr(context, "region", None)
    preferences = getattr(context, "preferences", None)
    scale = float(preferences.system.ui_scale) if preferences is not None else 1.0
    scale = scale if scale > 0 else 1.0  # the bpy module reports 0 without a window
    width = float(region.width) / scale if region is not None and region.width > 0 else DEFAULT_SIDEBAR_PX
    return max(16, int((width - LABEL_MARGIN_PX - (ICON_PX if icon else 0)) / PX_PER_CHAR))


def wrapped_label(layout: Any, context: Any, text: str, icon: str = "NONE") -> None:
    """`text` on as many label lines as the region needs, never cut mid-sentence. The icon marks the
    first line; the others are indented to match."""
    lines = textwrap.wrap(text, label_chars(context, icon != "NONE"), break_on_hyphens=False) or [""]
    column = layout.column(align=True)
    for number, line in enumerate(lines):
        column.label(text=line, icon=icon if number == 0 or icon == "NONE" else "BLANK1")


_PROP: Any = bpy.types.UILayout.bl_rna.functions["prop"]  # type: ignore[attr-defined]  # not in the stubs
HAS_PLACEHOLDER = "placeholder" in {parameter.identifier for parameter in _PROP.parameters}
"""UILayout.prop(placeholder=…) is in Blender 4.2 and 5.0; checked, not assumed, for the versions between."""


def text_field(layout: Any, data: Any, prop: str, label: str, placeholder: str) -> None:
    """A text field at full width with its label on the row above (an inline label would take 40 % of
    the width and be cut), and a grey example inside while it is empty."""
    column = layout.column(align=True)
    column.label(text=label)
    prop_with_placeholder(column, data, prop, placeholder, text="")


def labelled(layout: Any, data: Any, prop: str, label: str) -> None:
    """Any field at full width with its label on the row above."""
    column = layout.column(align=True)
    column.label(text=label)
    column.prop(data, prop, text="")


def prop_with_placeholder(layout: Any, data: Any, prop: str, placeholder: str, **kwargs: Any) -> None:
    """layout.prop with a grey example shown while the field is empty, where this Blender has it."""
    if HAS_PLACEHOLDER:
        layout.prop(data, prop, placeholder=placeholder, **kwargs)
    else:
        layout.prop(data, prop, **kwargs)
