"""Thin operators: validate input, build JobSpecs, hand them to the engine."""

from . import batch, generate, queue, results

_modules = (generate, batch, queue, results)


def register() -> None:
    for module in _modules:
        module.register()


def unregister() -> None:
    for module in reversed(_modules):
        module.unregister()
