"""The docs a newcomer walks: README.md and docs/*.md.

Every Markdown link in them is relative and resolves to a file or folder of this
repository (no link leaves it, neither by `../` nor by URL), and an anchor names a heading
of the page it points at; the README stays short; and there are blocks fenced
```` ```sh runnable ```` for tests/integration/test_docs.py to run, so that test cannot pass
by running nothing.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200
RUNNABLE = "sh runnable"

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
# [text](target) and ![alt](target), with an optional "title"; <target> in angle brackets too.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*(<[^>]*>|\S+)", re.M)
AUTOLINK = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]*)>")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1)(?!\n[ \t]*\n)[\s\S])+?\1")  # may span lines, not paragraphs
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def split_fences(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str, str]]]:
    """(prose lines as (number, line), fenced blocks as (first line number, info string, body))."""
    prose: list[tuple[int, str]] = []
    blocks: list[tuple[int, str, str]] = []
    fence: tuple[str, int, str, list[str]] | None = None  # (marker, line, info, body)
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if fence is None:
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                fence = (m.group(1), number, m.group(2).strip(), [])
            else:
                prose.append((number, line))
        elif m and m.group(1)[0] == fence[0][0] and len(m.group(1)) >= len(fence[0]) and not m.group(2).strip():
            blocks.append((fence[1], fence[2], "\n".join(fence[3]) + "\n"))
            fence = None
        else:
            fence[3].append(line)
    assert fence is None, f"a fence opened on line {fence[1]} is never closed"
    return prose, blocks


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link outside code blocks and code spans."""
    prose = dict(split_fences(page.read_text())[0])
    text = "\n".join(prose.get(n, "") for n in range(1, max(prose, default=0) + 1))
    text = CODE_SPAN.sub(lambda m: "\n" * m.group(0).count("\n"), text)  # keeps the line numbers
    found = []
    for pattern in (INLINE_LINK, REFERENCE_DEF, AUTOLINK):  # a link's text may wrap over lines
        for m in pattern.finditer(text):
            target = m.group(1)
            found.append((text.count("\n", 0, m.start(1)) + 1, target[1:-1] if target.startswith("<") else target))
    return sorted(found)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text, lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    prose, _ = split_fences(page.read_text())
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose:
        m = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def ignored_by_git(paths: list[Path]) -> set[Path]:
    if not (ROOT / ".git").exists() or not paths:
        return set()
    proc = subprocess.run(["git", "check-ignore", "--stdin"], cwd=ROOT, capture_output=True, text=True,
                          input="\n".join(rel(p) for p in paths) + "\n")
    return {(ROOT / line).resolve() for line in proc.stdout.splitlines() if line}


def test_the_pages_exist():
    assert (ROOT / "README.md").is_file()
    assert len(PAGES) > 1, "docs/*.md: no pages"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_link_resolves_inside_the_repository(page: Path):
    problems, targets = [], []
    for number, target in links(page):
        where = f"{rel(page)}:{number}: {target!r}"
        if SCHEME.match(target) or target.startswith("//"):
            problems.append(f"{where} points outside the repository (use a relative path to a file here)")
            continue
        path, _, anchor = target.partition("#")
        if not path:
            file = page
        else:
            base = ROOT if path.startswith("/") else page.parent
            file = (base / path.lstrip("/")).resolve()
            if not file.is_relative_to(ROOT.resolve()):
                problems.append(f"{where} leaves the repository")
                continue
            if not file.exists():
                problems.append(f"{where}: no such file or folder")
                continue
            targets.append(file)
        if anchor and file.suffix == ".md" and anchor not in anchors(file):
            problems.append(f"{where}: no heading #{anchor} in {rel(file)}")
    for file in ignored_by_git(targets):
        problems.append(f"{rel(page)}: a link points at {rel(file)}, which git ignores (not part of the repository)")
    assert not problems, "\n".join(problems)


def test_the_readme_is_short():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; at most {README_MAX_LINES}: move detail to docs/"


def test_runnable_blocks_exist_and_are_marked_exactly():
    runnable, misspelt = [], []
    for page in PAGES:
        for number, info, body in split_fences(page.read_text())[1]:
            if info == RUNNABLE:
                assert body.strip(), f"{rel(page)}:{number}: an empty runnable block"
                runnable.append(f"{rel(page)}:{number}")
            elif "runnable" in info:
                misspelt.append(f"{rel(page)}:{number}: ```{info} (a runnable block's fence is exactly ```{RUNNABLE})")
    assert not misspelt, "\n".join(misspelt)
    assert runnable, f"no ```{RUNNABLE} block in README.md or docs/*.md: tests/integration/test_docs.py would run nothing"


def test_the_architecture_page_has_its_diagram():
    blocks = split_fences((ROOT / "docs" / "architecture.md").read_text())[1]
    assert [info for _, info, _ in blocks].count("mermaid") == 1, "docs/architecture.md: one ```mermaid diagram"
