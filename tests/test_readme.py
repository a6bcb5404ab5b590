"""README states no result of its own: its "The answer" section links to the records and quotes no figure,
so it cannot disagree with them (the records are re-rendered from the measurements: test_published_results).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def section(text: str, heading: str) -> str:
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def prose(markdown: str) -> str:
    """The section without link targets, image paths and code spans (file names may hold digits)."""
    markdown = re.sub(r"\]\([^)]*\)", "]", markdown)
    return re.sub(r"`[^`]*`", "", markdown)


def test_the_answer_section_quotes_no_figure_of_its_own():
    answer = prose(section((ROOT / "README.md").read_text(), "The answer"))
    figures = re.findall(r"\d[\d,.]*", answer.replace("## The answer", ""))
    assert figures == [], f"README's answer quotes {figures}: take them from the records or drop them"


def test_every_record_and_notebook_the_readme_links_exists():
    links = re.findall(r"\]\(((?:results|notebooks)/[^)#]+)", (ROOT / "README.md").read_text())
    assert links
    assert [link for link in links if not (ROOT / link).exists()] == []
