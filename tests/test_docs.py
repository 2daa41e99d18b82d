"""Every relative Markdown link in README.md and docs/*.md names a file that exists and, after a `#`,
a heading (or an explicit anchor) of that file, spelled as GitHub makes anchors; so does every
repository path they name in code (`exporter/...py`)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target); the text may hold `code` and one level of brackets.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
EXPLICIT = re.compile(r"""<a\s+(?:name|id)=["']([^"']+)["']""")


def prose(text: str) -> str:
    """The text without fenced code blocks: what looks like a link or a heading there is neither."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)  # keeps letters, digits, _ and -, as GitHub does
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a page has: its headings' (numbered from -1 when repeated) and explicit ones."""
    text = prose(page.read_text())
    seen: dict[str, int] = {}
    found = set(EXPLICIT.findall(text))
    for heading in HEADING.findall(text):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    """The relative link targets of a page, outside code."""
    text = CODE.sub("", prose(page.read_text()))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t, re.IGNORECASE)]


def test_slugs_are_githubs() -> None:
    assert slug("Discovery, several projects, cardinality guards") == "discovery-several-projects-cardinality-guards"
    assert slug("Data consistency: DRS comparison results") == "data-consistency-drs-comparison-results"
    assert slug("`/status.json`") == "statusjson"
    assert slug("Install and run against real DRS") == "install-and-run-against-real-drs"
    assert slug("HuaweiCloudDRSJobStalled") == "huaweiclouddrsjobstalled"


def test_the_checker_finds_what_is_broken(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Top\n\n## Twice\n\n## Twice\n\n```sh\n# not a heading\n```\n")
    page = tmp_path / "b.md"
    page.write_text(
        "[ok](a.md#top) [ok](a.md#twice-1) [no file](c.md) [no anchor](a.md#not-a-heading) "
        "[web](https://example.com/x.md) `[code](d.md)`\n\n```md\n[fenced](e.md)\n```\n"
    )
    assert links(page) == ["a.md#top", "a.md#twice-1", "c.md", "a.md#not-a-heading"]
    assert anchors(tmp_path / "a.md") == {"top", "twice", "twice-1"}


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / unquote(path)).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}")
        elif anchor and file.suffix == ".md" and unquote(anchor) not in anchors(file):
            broken.append(f"{target}: no heading with the anchor #{anchor}")
        elif anchor and file.suffix != ".md":
            broken.append(f"{target}: an anchor into a file that is not Markdown")
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


# A repository file named in `code`: such names are as easy to leave stale as links.
NAMED = re.compile(r"`((?:exporter|tests|benchmarks|helm|dashboards|alerts|docs)/[\w./-]+\.(?:py|md|ya?ml|json|sh))`")


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_files_named_in_code_exist(page: Path) -> None:
    missing = [name for name in NAMED.findall(prose(page.read_text())) if not (ROOT / name).exists()]
    assert not missing, f"{page.relative_to(ROOT)} names files that do not exist: {missing}"


# `exporter.web.server` and the like: a module (and maybe an attribute of it) in the present tense.
MODULE = re.compile(r"(?P<before>.{0,40})`(?P<name>exporter(?:\.\w+)+)`", re.DOTALL)


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` is a module of the package, or an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_modules_named_exist(page: Path) -> None:
    """A dotted module name is one that exists, unless the page says it is a former one ("then", "before")."""
    text = prose(page.read_text())
    former = set(re.findall(r"^\| `(exporter\.[\w.]+)` \|", text, re.MULTILINE))  # the README's renames table
    missing = [
        m["name"]
        for m in MODULE.finditer(text)
        if m["name"] not in former and not re.search(r"\b(then|before)\b", m["before"]) and not resolves(m["name"])
    ]
    assert not missing, f"{page.relative_to(ROOT)} names modules that do not exist: {missing}"


def test_every_page_of_docs_is_linked_from_the_readme() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(ROOT / "README.md") if t.partition("#")[0]}
    unlinked = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not unlinked, f"docs/ pages the README does not link: {unlinked}"


def test_the_readme_fits_on_a_few_screens() -> None:
    """At most 350 lines: the rest lives in docs/, linked from the README."""
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 350, f"README.md has {lines} lines; move detail into docs/ and link it"
