"""Freeze every Python module the single-file pyinit can import into frozen.c, the table that
single/main.c hands to CPython (PyImport_FrozenModules): nothing is read from disk at run time.

Run by the static CPython's own build-tree interpreter (same bytecode, same standard library):

    python -I -S single/freeze.py OUT.c PROJECT_ROOT PSUTIL_SOURCE_DIR

The modules are what modulefinder sees imported, at any depth and in function bodies too, from
single/_pyinit_single.py: pyinit, psutil and the part of the standard library they use. Modules
the interpreter already has frozen or built in are left out.
"""

from __future__ import annotations

import _imp
import marshal
import sys
from modulefinder import ModuleFinder
from pathlib import Path

ENTRY = "_pyinit_single"
# Imported by the interpreter itself (the UTF-8 codec of UTF-8 mode and its aliases), not by an
# import statement modulefinder can see.
ALSO = ["encodings", "encodings.aliases", "encodings.utf_8", "encodings.ascii", "encodings.latin_1"]
# psutil's other platforms, and what only they or Windows would import.
EXCLUDES = ["psutil._psaix", "psutil._psbsd", "psutil._psosx", "psutil._pssunos",
            "psutil._pswindows", "_winapi", "winreg", "nt", "msvcrt", "_overlapped"]


def find(root: Path, psutil_dir: Path) -> ModuleFinder:
    finder = ModuleFinder(path=[str(root / "single"), str(root), str(psutil_dir), *sys.path],
                          excludes=EXCLUDES)
    finder.import_hook(ENTRY)
    for name in ALSO:
        finder.import_hook(name)
    return finder


def frozen(finder: ModuleFinder) -> list[tuple[str, bytes, bool]]:
    """(name, marshalled code, is_package) of every source module, sorted by name."""
    already = set(_imp._frozen_module_names()) | set(sys.builtin_module_names)
    out = []
    for name, module in sorted(finder.modules.items()):
        path = module.__file__
        if name in already or not path or not path.endswith(".py"):
            continue
        code = compile(Path(path).read_bytes(), f"<frozen {name}>", "exec", dont_inherit=True)
        out.append((name, marshal.dumps(code), module.__path__ is not None))
    return out


def c_source(modules: list[tuple[str, bytes, bool]]) -> str:
    lines = ["/* Made by single/freeze.py: the frozen Python modules of the single-file pyinit. */",
             "#include <Python.h>", ""]
    for index, (_, data, _) in enumerate(modules):
        lines.append(f"static const unsigned char M{index}[] =")
        for start in range(0, len(data), 40):
            chunk = "".join(f"\\x{byte:02x}" for byte in data[start:start + 40])
            lines.append(f'    "{chunk}"')
        lines.append(";")
    lines.append("const struct _frozen pyinit_frozen_modules[] = {")
    for index, (name, _, package) in enumerate(modules):
        lines.append(f'    {{"{name}", M{index}, (int)sizeof(M{index}) - 1, {int(package)}, NULL}},')
    lines += ["    {NULL, NULL, 0, 0, NULL},", "};", ""]
    return "\n".join(lines)


def main() -> None:
    out, root, psutil_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    finder = find(root, psutil_dir)
    missing = sorted(name for name in finder.badmodules
                     if name.split(".")[0] in ("pyinit", ENTRY))
    if missing:
        sys.exit(f"freeze.py: cannot find {', '.join(missing)}")
    modules = frozen(finder)
    Path(out).write_text(c_source(modules))
    size = sum(len(data) for _, data, _ in modules)
    print(f"freeze.py: {len(modules)} modules, {size // 1024} KiB of bytecode")


if __name__ == "__main__":
    main()
