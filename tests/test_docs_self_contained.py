"""The repository stands on its own: no tracked file cites a design file kept outside it, and
every relative link in README.md and docs/*.md reaches an existing file and, for a markdown
target, an existing anchor (a heading's GitHub slug or an explicit `<a id="...">`)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Spelled in pieces so that this file does not match itself.
OUTSIDE_CITATIONS = re.compile("|".join([
    re.escape("KEEP_" + "SEMANTICS"),
    re.escape("../" + "shared"),
    re.escape("/work/" + "shared"),
    re.escape("DESIGN" + ".md"),
]))

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[([^\]]*)\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
EXPLICIT_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.I)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def tracked_files() -> list[Path]:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    return [ROOT / name for name in listing.decode().split("\0") if name]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, lower case, punctuation dropped (hyphens
    and underscores stay), spaces to hyphens."""
    text = LINK.sub(lambda m: m.group(1), heading).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every anchor a markdown text defines; repeated headings get -1, -2, ... as on GitHub."""
    found = set(EXPLICIT_ANCHOR.findall(markdown))
    seen: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", markdown)):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(markdown: str, folder: Path) -> list[str]:
    """Relative links of a markdown text (read from `folder`) whose file or anchor is missing."""
    prose = INLINE_CODE.sub("", FENCE.sub("", markdown))
    own = anchors(markdown)
    broken = []
    for _text, target in LINK.findall(prose):
        if SCHEME.match(target):
            continue
        path, _, anchor = target.partition("#")
        if not path:
            if anchor not in own:
                broken.append(f"{target} (no such anchor here)")
            continue
        file = (folder / path).resolve()
        if not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            broken.append(f"{target} (no such anchor in {path})")
    return broken


def test_no_tracked_file_cites_a_file_outside_the_repository():
    offenders = []
    for file in tracked_files():
        if not file.is_file():
            continue  # deleted in the work tree, not yet committed
        data = file.read_bytes()
        if b"\0" in data:
            continue  # binary
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if OUTSIDE_CITATIONS.search(line):
                offenders.append(f"{file.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not offenders, ("cite the project's own docs (docs/keep-compatibility.md, "
                           "docs/architecture.md) instead:\n" + "\n".join(offenders))


MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_reach_a_file_and_anchor(page: Path):
    broken = broken_links(page.read_text(), page.parent)
    assert not broken, f"{page.relative_to(ROOT)} links to:\n" + "\n".join(broken)


def test_the_link_check_finds_what_is_missing(tmp_path: Path):
    other = '# Deep dive (`x.py`)\n<a id="kept"></a>\n## Same\n## Same\n'
    (tmp_path / "other.md").write_text(other)
    page = ("# Top\n[ok](other.md) [ok](other.md#deep-dive-xpy) [ok](other.md#kept)\n"
            "[ok](other.md#same-1) [ok](#top) [web](https://example.org/x#y)\n"
            "`[code](nowhere.md)`\n```\n[fenced](nowhere.md)\n```\n"
            "[bad](missing.md) [bad](other.md#nope) [bad](#nowhere)\n")
    assert broken_links(page, tmp_path) == ["missing.md (no such file)",
                                            "other.md#nope (no such anchor in other.md)",
                                            "#nowhere (no such anchor here)"]
