"""What an imported corpus's manifest says about where each part came from.

`provenance`: chunks, queries, relevance labels, memberships and each embedding column, each either the
team's (with its file) or synthesized/derived (with how). `embedding.columns`: per column, who made the
vectors (the team's import, a provider and model, or derivation from 1536) and any transformation;
`embedding.labels`: the text the loaded rows' `embedding_*_model` columns carry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dimbench.corpus import columns

UNNAMED = "imported (model not named: corpus import --model COLUMN=NAME)"
HELD_OUT = (
    "held-out chunks: removed from the searchable rows and from ground truth, each asked by a member of "
    "its workspace (one workspace) or a user who sees it (all of theirs)"
)
HELD_OUT_RELEVANCE = "the other chunks of a held-out chunk's own document, grade 2"
SYNTHESIZED_MEMBERS = (
    "as the generator makes them: two users per workspace, each in 1-3 workspaces, every workspace an "
    "owner, roles owner/admin/member/viewer"
)
DERIVED_768 = "truncate to 768 + renormalize"


def team(file: Path | str) -> dict[str, str]:
    return {"from": "team", "file": Path(file).name}


def synthesized(how: str) -> dict[str, str]:
    return {"from": "synthesized", "how": how}


def of_import(chunks: Path, queries: Path | None, qrels: Path | None, members: Path | None) -> dict[str, Any]:
    return {
        "chunks": team(chunks),
        "queries": team(queries) if queries else synthesized(HELD_OUT),
        "relevance": (
            team(qrels) if qrels else {"from": "none"} if queries else synthesized(HELD_OUT_RELEVANCE)
        ),
        "memberships": team(members) if members else synthesized(SYNTHESIZED_MEMBERS),
    }


def team_column(name: str, models: dict[str, str]) -> dict[str, Any]:
    return {"from": "team", "model": models.get(name, UNNAMED), "width": columns.WIDTHS[name]}


def embedded_column(
    provider: str, model: str, base_url: str | None, dimensions: int | None, width: int, column: str
) -> dict[str, Any]:
    padded = width < columns.WIDTHS[column]
    return {
        "from": "embedded",
        "provider": provider,
        "model": model,
        "base_url": base_url,
        "dimensions": dimensions,
        "width": width,
        "transform": (
            f"zero-padded {width} -> {columns.WIDTHS[column]} (every cosine distance unchanged)"
            if padded
            else None
        ),
    }


def label(entry: dict[str, Any]) -> str:
    """The model column's text for one column entry."""
    if entry["from"] == "team":
        return str(entry["model"])
    if entry["from"] == "derived":
        return f"{entry['of']} ({DERIVED_768})"
    text = f"{entry['provider']}:{entry['model']}"
    if entry.get("dimensions"):
        text += f"@{entry['dimensions']}"
    if entry.get("transform"):
        text += f" (zero-padded from {entry['width']})"
    return text


def refresh(manifest: dict[str, Any], directory: Path) -> None:
    """The derived 768 entry, the row labels and the embeddings' provenance, from the columns as they
    now stand (called before every manifest write of an imported corpus)."""
    embedding = manifest.setdefault("embedding", {})
    entries = embedding.setdefault("columns", {})
    entries = {
        name: e for name, e in entries.items() if columns.own(directory, name) and e["from"] != "derived"
    }
    if columns.derived(directory, "768") and "1536" in entries:
        entries["768"] = {"from": "derived", "of": label(entries["1536"]), "transform": DERIVED_768}
    embedding["columns"] = entries
    embedding["labels"] = {name: label(e) for name, e in entries.items() if name in ("1536", "768")}
    where = manifest.setdefault("provenance", {})
    where["embeddings"] = {
        name: ("team" if e["from"] == "team" else "derived" if e["from"] == "derived" else "embedded")
        for name, e in entries.items()
    }
