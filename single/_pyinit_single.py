"""The single file's first module (single/main.c imports it): maps the compiled-in C part of
psutil to the name psutil imports it by, then runs pyinit.

psutil does ``from . import _psutil_linux``; the built-in importer answers only top-level names,
so the built-in module ``_psutil_linux`` (single/Setup.local) needs this finder to be found as
``psutil._psutil_linux``.
"""

from __future__ import annotations

import _imp
import sys
from _frozen_importlib import ModuleSpec, spec_from_loader

COMPILED_IN = {"psutil._psutil_linux": "_psutil_linux"}


class CompiledIn:
    """Finder and loader for built-in modules that live inside a package."""

    @classmethod
    def find_spec(cls, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if name not in COMPILED_IN:
            return None
        return spec_from_loader(name, cls, origin="built-in")

    @staticmethod
    def create_module(spec: ModuleSpec) -> object:
        return _imp.create_builtin(ModuleSpec(COMPILED_IN[spec.name], None))

    @staticmethod
    def exec_module(module: object) -> None:
        _imp.exec_builtin(module)


def install() -> None:
    if CompiledIn not in sys.meta_path:
        sys.meta_path.append(CompiledIn)


def main() -> None:
    install()
    from pyinit.init import run

    run()
