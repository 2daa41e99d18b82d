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
        elif isinstance(node, ast.Call) and dynamic_import(node):
            # importlib.import_module("exporter.x") or __import__("exporter.x"): an import all the same
            target = node.args[0].value  # type: ignore[attr-defined]
            if target.startswith("."):  # relative to the package, as import_module(".x", __package__) reads it
                dots = len(target) - len(target.lstrip("."))
                base = package.split(".")[: len(package.split(".")) - (dots - 1)]
                target = ".".join([*base, target.lstrip(".")]).rstrip(".")
            if target.split(".")[0] == "exporter":
                out.append((node.lineno, target))
    return out


def dynamic_import(node: ast.Call) -> bool:
    """``import_module("…")``, ``importlib.import_module("…")`` or ``__import__("…")`` with a literal name."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    literal = bool(node.args) and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
    return called in ("import_module", "__import__") and literal


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
                # The package itself (``__version__``) only; base and drs wholly, names of their ``__init__`` too.
                allowed = target == "exporter" or any(
                    target == p or target.startswith(p + ".") for p in SIMULATOR_MAY_IMPORT[1:]
                )
                if not allowed:
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


def fake_tree(root: Path, files: dict[str, str]) -> None:
    """``root``/exporter with ``files`` (paths under it) and every package's ``__init__.py``."""
    for name, text in files.items():
        path = root / "exporter" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in [root / "exporter", *(root / "exporter").rglob("*")]:
        if folder.is_dir() and not (folder / "__init__.py").exists():
            (folder / "__init__.py").write_text("")


def test_an_upward_import_by_a_string_literal_is_found(tmp_path: Path) -> None:
    fake_tree(
        tmp_path,
        {
            "render/exposition.py": "",
            "base/deadline.py": "import importlib\n\nmodule = importlib.import_module('exporter.render.exposition')\n",
            "base/timeparse.py": "def f() -> None:\n    __import__('exporter.render')\n",
            "drs/auth.py": "from importlib import import_module\n\nx = import_module('..render.exposition', 'x')\n",
            "web/server.py": "import importlib\n\nok = importlib.import_module('exporter.base.deadline')\n",
        },
    )
    assert violations(tmp_path) == [
        "exporter/base/deadline.py:3: exporter.base.deadline imports exporter.render.exposition: "
        "a lower layer (exporter.base) imports a higher one (exporter.render)",
        "exporter/base/timeparse.py:2: exporter.base.timeparse imports exporter.render: "
        "a lower layer (exporter.base) imports a higher one (exporter.render)",
        "exporter/drs/auth.py:3: exporter.drs.auth imports exporter.render.exposition: "
        "a lower layer (exporter.drs) imports a higher one (exporter.render)",
    ]


def test_the_simulator_may_import_names_from_base_and_drs_but_nothing_above(tmp_path: Path) -> None:
    fake_tree(
        tmp_path,
        {
            "base/__init__.py": "LIMIT = 1\n",
            "base/deadline.py": "",
            "drs/__init__.py": "OPERATIONS = ()\n",
            "metrics/__init__.py": "X = 1\n",
            "simulator/server.py": (
                "from exporter.base import LIMIT\nfrom ..drs import OPERATIONS\nfrom ..base import deadline\n"
                "from exporter import __version__\nfrom exporter.metrics import X\n"
            ),
        },
    )
    assert violations(tmp_path) == [
        "exporter/simulator/server.py:5: exporter.simulator.server imports exporter.metrics: "
        "the simulator may import only exporter, exporter.base, exporter.drs, exporter.simulator"
    ]


def test_few_modules_stay_loose_at_the_top() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(loose) <= MAX_LOOSE, loose


def test_no_module_is_large() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {path: lines for path, lines in sizes.items() if lines > MAX_LINES} == {}
