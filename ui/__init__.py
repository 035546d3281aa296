"""Sidebar panels, scene settings and preferences."""

from . import panels, preferences, props, queue

_modules = (preferences, props, panels, queue)


def register() -> None:
    for module in _modules:
        module.register()


def unregister() -> None:
    for module in reversed(_modules):
        module.unregister()
