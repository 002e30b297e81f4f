"""Freeze every Python module the single-file pyinit imports into frozen.c, the table that
single/main.c hands to CPython (PyImport_FrozenModules): nothing is read from disk at run time.

Run by the static CPython's own build-tree interpreter (same bytecode, same standard library):

    python -I -S single/freeze.py OUT.c PROJECT_ROOT PSUTIL_SOURCE_DIR

Which modules: those that pyinit really imports, found by running it (as _pyinit_single.main()
does) on the paths that import something: start-up, --version, a usage error, a command that
cannot be started, a teardown that walks the process tree with psutil, JSON logs, --check; plus
every module of pyinit, everything they import (in function bodies too) and a few listed below,
with what those import in turn. modulefinder on everything would
follow every import in every function of psutil and the standard library (asyncio, email,
unittest...: 300 modules, 8 MB for 60 used). Modules the interpreter already has frozen or
built in are left out.
"""

from __future__ import annotations

import _imp
import ast
import marshal
import os
import subprocess
import sys
from pathlib import Path

SCENARIOS = [
    ["--version"],
    ["--no-such-option"],
    ["--", "/nonexistent/command"],
    ["-v", "--", "sh", "-c", "sleep 5 & setsid sleep 5 & exit 3"],
    ["-v", "--log-format", "json", "--", "sh", "-c", "sleep 5 & exit 3"],
    ["--check", "--json"],
]
# What no scenario reaches, imported (with what they import) before each record: the codecs
# UTF-8 mode may look up, and inspect, which psutil imports to log when PSUTIL_DEBUG is set (a
# variable of the workload's environment, which pyinit's psutil sees too).
ALSO = ["encodings.aliases", "encodings.utf_8", "encodings.ascii", "encodings.latin_1", "inspect"]

# Runs pyinit in a child interpreter and writes {module: source file} when it exits (pyinit
# leaves through os._exit, so at that call).
TRACE = """
import os, sys
out, paths, also, argv = sys.argv[1], sys.argv[2].split(os.pathsep), sys.argv[3], sys.argv[4:]
sys.path[:0] = paths
def dump():
    for name in also.split(","):
        __import__(name)
    files = [(n, getattr(m, "__file__", None)) for n, m in list(sys.modules.items())]
    with open(out, "w") as f:
        f.writelines(f"{n}\\t{p}\\n" for n, p in files if p and p.endswith(".py"))
exit_now = os._exit
def traced_exit(status):
    dump()
    exit_now(status)
os._exit = traced_exit
sys.argv = ["pyinit", *argv]
try:
    import _pyinit_single
    _pyinit_single.main()
finally:
    dump()
"""


def pyinit_imports(root: Path) -> list[str]:
    """Every module of pyinit (__main__ would run it) and every module any of them imports,
    at the top or in a function body: a lazy import on a path no scenario takes must not be
    missed."""
    names = set()
    for path in sorted((root / "pyinit").glob("*.py")):
        if path.stem != "__main__":
            names.add(f"pyinit.{path.stem}")
        for node in ast.walk(ast.parse(path.read_bytes())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                if node.module == "pyinit":
                    names.update(f"pyinit.{alias.name}" for alias in node.names
                                 if (root / "pyinit" / f"{alias.name}.py").exists())
    names.discard("pyinit.__init__")
    return sorted(names)


def imported(root: Path, paths: list[str], out: Path) -> dict[str, str]:
    """{module: source file} of everything the scenarios import, and of pyinit_imports() with
    what those import in turn."""
    own = pyinit_imports(root)
    found: dict[str, str] = {}
    for argv in SCENARIOS:
        trace = [sys.executable, "-I", "-S", "-c", TRACE, str(out), os.pathsep.join(paths),
                 ",".join(ALSO + own), *argv]
        subprocess.run(trace, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60, check=False)
        found.update(line.split("\t") for line in out.read_text().splitlines())
        out.unlink()
    return found


def frozen(files: dict[str, str]) -> list[tuple[str, bytes, bool]]:
    """(name, marshalled code, is_package) of every module to freeze, sorted by name."""
    already = set(_imp._frozen_module_names()) | set(sys.builtin_module_names)
    out = []
    for name, path in sorted(files.items()):
        if name in already:
            continue
        code = compile(Path(path).read_bytes(), f"<frozen {name}>", "exec", dont_inherit=True)
        out.append((name, marshal.dumps(code), Path(path).name == "__init__.py"))
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
        size = f"(int)sizeof(M{index}) - 1"
        lines.append(f'    {{"{name}", M{index}, {size}, {int(package)}, NULL}},')
    lines += ["    {NULL, NULL, 0, 0, NULL},", "};", ""]
    return "\n".join(lines)


def main() -> None:
    out, root, psutil_dir = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    # absolute: pyinit moves to / before it starts the child (it never pins a directory)
    files = imported(root, [str(root / "single"), str(root), str(psutil_dir)],
                     out.with_suffix(".txt").resolve())
    for needed in ("_pyinit_single", "pyinit.init", "pyinit.tree", "psutil._pslinux"):
        if needed not in files:
            sys.exit(f"freeze.py: running pyinit did not import {needed}")
    modules = frozen(files)
    out.write_text(c_source(modules))
    size = sum(len(data) for _, data, _ in modules)
    print(f"freeze.py: {len(modules)} modules, {size // 1024} KiB of bytecode")


if __name__ == "__main__":
    main()
