"""A key pasted into the preferences with a line break (a CRLF `.env` file, a copy from a terminal) is
refused with a message that never shows it, and nothing is sent; whitespace around a key is only
whitespace. Real Blender, real HTTP against the Tripo sandbox."""

from __future__ import annotations

from types import ModuleType

import pytest
from test_backend_settings import KEY, online, prefs, sandbox  # noqa: F401  (fixtures)
from test_panel import draw

from sandbox.tripo import TripoSandbox


def test_a_key_with_a_line_break_is_refused_and_never_shown(runtime: ModuleType, sandbox: TripoSandbox,  # noqa: F811
                                                            prefs: object,  # noqa: F811
                                                            capfd: pytest.CaptureFixture[str]) -> None:
    import bpy

    prefs.tripo_base_url = sandbox.url  # type: ignore[attr-defined]
    prefs.tripo_api_key = "tsk_ab\r\ncd" + KEY  # type: ignore[attr-defined]
    bpy.context.scene.kiln.backend = "tripo"
    labels = draw("KILN_PT_generate").labels()
    assert "The Tripo API key contains a line break" in labels and KEY not in labels
    with pytest.raises(RuntimeError, match="contains a line break") as refused:
        bpy.ops.kiln.generate(prompt="crate")
    assert KEY not in str(refused.value)
    assert sandbox.state.requests_seen == [], "nothing was sent with it"

    prefs.tripo_api_key = f"  {KEY}\r\n"  # type: ignore[attr-defined]  # only whitespace around the key
    assert bpy.ops.kiln.refresh_balance() == {"FINISHED"}
    assert bpy.ops.kiln.generate(prompt="crate") == {"FINISHED"}
    assert runtime.run_until_done(timeout=60)
    assert runtime.scheduler().views()[-1].state.value == "finished"
    assert {auth for _, route, auth in sandbox.state.requests_seen if route.startswith("/v3/")} == {f"Bearer {KEY}"}
    captured = capfd.readouterr()
    assert KEY not in captured.out + captured.err
