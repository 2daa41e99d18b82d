"""Printing results and writing them into a marked section of a Markdown file."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, name: str, text: str) -> None:
    """Replace what stands between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` in ``path``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    doc = path.read_text()
    if start not in doc or end not in doc:
        raise ValueError(f"{path} has no {start} … {end} section")
    head, _, rest = doc.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def publish(text: str, path: Path | None, name: str) -> None:
    """Print ``text`` and, when ``path`` is given (``--write``), record it as section ``name`` there."""
    print(text)
    if path is not None:
        write_section(path, name, text)
