"""The sources the code cites live in the repository: every `*.md` a tracked file names is a
tracked file, and every `docs/....md` path exists. (The facts the code relies on used to be cited
from a file outside the repository; docs/quantization.md, docs/energy.md and docs/references.md
now hold them.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A markdown file name, optionally with a directory part; the characters around it are checked
# separately so that URLs (which name .md pages of other sites) are skipped.
_MD = re.compile(r"[A-Za-z0-9_.:/-]*[A-Za-z0-9_-]\.md\b")

# Names that appear because the code *writes* a file of that name, not because it cites one.
_WRITTEN_NAMES = {
    # accelsim/reporting/build.py: the HTML page `index` is written as `report.md` in Markdown.
    "index.md": "accelsim/reporting/build.py",
}


def _tracked() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout ({exc})")
    return [p for p in out.decode().split("\0") if p]


def _citations(files: list[str]):
    this = str(Path(__file__).resolve().relative_to(REPO))
    for rel in files:
        if rel == this:
            continue  # this file names missing files on purpose (the detector's own test)
        try:
            text = (REPO / rel).read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary (figures) or unreadable: no citations
        for lineno, line in enumerate(text.splitlines(), 1):
            for m in _MD.finditer(line):
                token = m.group(0)
                if "://" in token:
                    continue  # a URL
                yield rel, lineno, token.lstrip(":")


def test_cited_markdown_files_exist():
    files = _tracked()
    names = {Path(p).name for p in files}
    missing = []
    for rel, lineno, token in _citations(files):
        name = Path(token).name
        if "/" in token:
            here = (REPO / rel).parent / token
            if not ((REPO / token).is_file() or here.is_file()):
                missing.append(f"{rel}:{lineno}: {token} (no such file in the repository)")
        elif name not in names and _WRITTEN_NAMES.get(name) != rel:
            missing.append(f"{rel}:{lineno}: {token} (not a tracked file)")
    assert not missing, "cited markdown files missing:\n" + "\n".join(missing)


def test_docs_paths_exist():
    files = _tracked()
    bad = [
        f"{rel}:{lineno}: {token}"
        for rel, lineno, token in _citations(files)
        if token.startswith("docs/") and not (REPO / token).is_file()
    ]
    assert not bad, "docs/ paths that do not exist:\n" + "\n".join(bad)


def test_written_names_still_written():
    # an exemption that no longer matches its file is stale and must go
    for name, rel in _WRITTEN_NAMES.items():
        assert name in (REPO / rel).read_text(), f"{rel} no longer mentions {name}"


def test_detector_catches_a_missing_citation(tmp_path):
    # the pattern finds plain and path citations and skips URLs
    line = "see REFERENCE.md, docs/nothing.md and https://example.org/page.md"
    tokens = [m.group(0) for m in _MD.finditer(line)]
    assert "REFERENCE.md" in tokens and "docs/nothing.md" in tokens
    assert all("://" in t for t in tokens if "example" in t)
