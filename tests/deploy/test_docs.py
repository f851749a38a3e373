"""The deployment docs link only to files and headings that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "docs/deployment.md", "docs/scaling.md", "docs/runbooks.md", "collector-config/README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+)$", text, re.M)}


def broken_links(doc: Path) -> list[str]:
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked (no network)
            continue
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / path_part).resolve() if path_part else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor}")
    return broken


@pytest.mark.parametrize("name", DOCS)
def test_relative_links_resolve(name):
    assert broken_links(ROOT / name) == []


def test_broken_link_is_reported(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n[x](b.md) [y](#title) [z](#nope) [w](https://example.com)\n")
    assert broken_links(tmp_path / "a.md") == ["b.md: no such file", "#nope: no heading #nope"]
