"""Every relative link and image of README.md and docs/*.md points at a file of the repository,
and every ``#anchor`` into a markdown file names one of its headings (as GitHub slugs them).

Catches: a moved or renamed doc, figure or script that a page still links to, a heading renamed
under a link into it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")
# [text](target) and ![alt](target); the text may hold one level of brackets (a link's image).
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code blanked out."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(INLINE_CODE.sub("", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link keeps its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a markdown page's headings; a repeated heading gets -1, -2, …"""
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not match:
            continue
        base = slug(match.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(page: Path, root: Path) -> list[str]:
    """Each relative link or image of ``page`` whose file or anchor does not exist."""
    broken = []
    for line in prose(page.read_text()):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, mailto:, …
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(root)}: {target}"
            if not file.exists():
                broken.append(f"{where} (no {path})")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{where} (no heading #{anchor} in {file.relative_to(root)})")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_link_and_image_resolves(page: Path) -> None:
    assert broken_links(page, ROOT) == []


def test_the_docs_are_linked_from_the_readme() -> None:
    """Each page of docs/ is reachable from the README's links."""
    linked = {
        (ROOT / target.partition("#")[0]).resolve()
        for line in prose((ROOT / "README.md").read_text())
        for target in LINK.findall(line)
    }
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


def test_the_check_finds_a_planted_broken_link(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Fast flow: NumPy (`flow.field`)\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[fine](docs/a.md) [fine](docs/a.md#fast-flow-numpy-flowfield) [fine](#top)\n"
        "# Top\n"
        "[gone](docs/b.md) ![gone](docs/figures/b.png) [gone](docs/a.md#slow-flow)\n"
        "`[code](docs/c.md)` and https://example.org are not links\n"
        "```\n[in a block](docs/d.md)\n```\n"
    )
    assert broken_links(page, tmp_path) == [
        "README.md: docs/b.md (no docs/b.md)",
        "README.md: docs/figures/b.png (no docs/figures/b.png)",
        "README.md: docs/a.md#slow-flow (no heading #slow-flow in docs/a.md)",
    ]
