"""The package's layout: imports run down the layers, few loose modules, no large ones.

Read from the source with ``ast`` (nothing is imported), so a violation is found even in a
module no test imports, and in imports inside functions or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "exporter"

# Lowest first. A module may import from its own layer and the layers below it, never above.
LAYERS: list[tuple[str, ...]] = [
    ("exporter",),  # the package itself: __version__
    ("exporter.base", "exporter.logs"),
    ("exporter.config",),
    ("exporter.drs",),
    ("exporter.sources",),
    ("exporter.metrics",),
    ("exporter.render",),
    ("exporter.app",),
    ("exporter.web", "exporter.schema"),
    ("exporter.reload",),
    ("exporter.cli",),
]
# The bundled DRS simulator is a program of its own beside the exporter: it shares the API's
# vocabulary and signing (base, drs) and nothing above, and the exporter never imports it.
SIMULATOR = "exporter.simulator"
SIMULATOR_MAY_IMPORT = ("exporter", "exporter.base", "exporter.drs", SIMULATOR)

MAX_LOOSE = 8
MAX_LINES = 500


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def exists(module: str, root: Path) -> bool:
    path = root.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, module) of every exporter module ``path`` imports, wherever the import statement is."""
    name = module_name(path, root)
    package = name if is_package(path) else name.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "exporter")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if source.split(".")[0] != "exporter":
                continue
            for alias in node.names:  # `from pkg import module` imports that module
                sub = f"{source}.{alias.name}"
                out.append((node.lineno, sub if exists(sub, root) else source))
    return out


def layer(module: str) -> int | None:
    """Index in LAYERS of the most specific prefix naming ``module``."""
    best: tuple[int, int] | None = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return best[0] if best is not None else None


def in_simulator(module: str) -> bool:
    return module == SIMULATOR or module.startswith(SIMULATOR + ".")


def violations(root: Path = ROOT) -> list[str]:
    """Every import of ``root``/exporter that runs up the layers (or into or out of the simulator), one line each."""
    out: list[str] = []
    for path in sorted((root / "exporter").rglob("*.py")):
        name = module_name(path, root)
        for line, target in imports(path, root):
            where = f"{path.relative_to(root)}:{line}: {name} imports {target}"
            if in_simulator(name):
                if target != "exporter" and not any(target.startswith(p + ".") for p in SIMULATOR_MAY_IMPORT[1:]):
                    out.append(f"{where}: the simulator may import only {', '.join(SIMULATOR_MAY_IMPORT)}")
                continue
            if in_simulator(target):
                out.append(f"{where}: the exporter does not import the simulator")
                continue
            mine, theirs = layer(name), layer(target)
            if mine is None or theirs is None:
                out.append(f"{where}: not in any layer of tests/test_layout.py's LAYERS")
            elif theirs > mine:
                out.append(f"{where}: a lower layer ({LAYERS[mine][0]}) imports a higher one ({LAYERS[theirs][0]})")
    return out


def test_imports_run_down_the_layers() -> None:
    assert violations() == []


def test_every_module_is_in_a_layer() -> None:
    unplaced = [
        module_name(p)
        for p in PACKAGE.rglob("*.py")
        if not in_simulator(module_name(p)) and layer(module_name(p)) is None
    ]
    assert unplaced == []


def test_an_upward_import_is_found(tmp_path: Path) -> None:
    # The check itself, on a copy of two layers with one import turned upside down.
    fake = tmp_path / "exporter"
    (fake / "base").mkdir(parents=True)
    (fake / "web").mkdir()
    for init in (fake / "__init__.py", fake / "base" / "__init__.py", fake / "web" / "__init__.py"):
        init.write_text("")
    (fake / "web" / "server.py").write_text("from ..base import deadline\n")
    (fake / "base" / "deadline.py").write_text("def f() -> None:\n    from ..web.server import x\n")
    assert violations(tmp_path) == [
        "exporter/base/deadline.py:2: exporter.base.deadline imports exporter.web.server: "
        "a lower layer (exporter.base) imports a higher one (exporter.web)"
    ]


def test_few_modules_stay_loose_at_the_top() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(loose) <= MAX_LOOSE, loose


def test_no_module_is_large() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {path: lines for path, lines in sizes.items() if lines > MAX_LINES} == {}
