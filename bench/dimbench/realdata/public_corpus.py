"""`dimbench corpus public`: a real multi-tenant corpus from text nobody here wrote — the docstrings of a
pinned set of installed Python packages and standard-library modules — in `corpus import`'s formats.

Why docstrings: they install with `pip install` (no download at run time), their authors and licenses are
named by each distribution's metadata (the stdlib's: the PSF License), and their owners are natural tenants
of very different sizes (scipy's docstrings are thousands of chunks, a small stdlib module's a handful).

Layout, one workspace per owner (a stdlib top-level module, or an installed distribution's top-level
package); one document per source module; one chunk per paragraph group of a function's or class's
docstring body (at most MAX_CHARS). The sources are parsed with `ast`, never imported, in sorted order, so the
same installed versions give the same files byte for byte.

Questions: the one-line summary of a docstring (real text, short and asymmetric to the body it summarizes),
held out of the searchable rows (the summary is never a chunk's text), asked in its workspace. Graded
relevance (BEIR qrels): the same object's body chunks grade 2 (what the summary summarizes), the other
chunks of the same module grade 1 (the same topic, written by the same authors).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import json
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dimbench.errors import DimbenchError
from dimbench.files import write_atomic

MAX_CHARS = 1200  # a chunk: consecutive paragraphs of one docstring up to this many characters
MIN_CHARS = 40  # shorter bodies say nothing a summary could be matched on
SUMMARY_MIN_WORDS = 3
# Questions per workspace at most (so the largest tenants do not hold almost every question); the importer
QUESTIONS_PER_WORKSPACE = 300  # keeps up to 300 per (scope, bucket) of them: enough for confirmation
# The default set: stdlib top-level modules (tenants from tiny to mid-size) and the numeric packages this
# venv installs (the heavy tail). Private, test and GUI modules are left out: they are not documentation.
DEFAULT_PACKAGES = ("numpy", "scipy", "matplotlib", "networkx", "sympy", "psycopg", "jinja2", "attr")
STDLIB_SKIP = ("test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip", "pydoc_data", "this")


@dataclass(frozen=True)
class Owner:
    workspace: str  # the tenant: "stdlib.<module>" or the distribution's package name
    root: Path  # a package directory or a single module file
    module: str  # the top-level import name
    source: str  # where the text comes from, with its version
    license: str


def stdlib_owners() -> list[Owner]:
    root = Path(sysconfig.get_paths()["stdlib"])
    version = f"CPython {sys.version.split()[0]}"
    owners = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in STDLIB_SKIP:
            continue
        for path in (root / name, root / f"{name}.py"):
            if path.exists():
                owners.append(Owner(f"stdlib.{name}", path, name, version, "PSF-2.0"))
                break
    return owners


def package_owner(name: str) -> Owner:
    spec = importlib.util.find_spec(name)  # a top-level name: found without importing it
    if spec is None or not spec.origin:
        raise DimbenchError(f"package {name!r} is not installed here (corpus public --packages)")
    origin = Path(spec.origin)
    root = origin.parent if origin.name == "__init__.py" else origin
    dists = importlib.metadata.packages_distributions().get(name) or [name]
    meta = importlib.metadata.metadata(dists[0])
    license_ = meta.get("License-Expression") or (meta.get("License") or "").splitlines()[0:1]
    license_ = license_ if isinstance(license_, str) else (license_[0] if license_ else "unknown")
    return Owner(name, root, name, f"{dists[0]} {meta['Version']}", license_[:80] or "unknown")


def module_files(owner: Owner) -> Iterator[tuple[str, Path]]:
    """(dotted module name, file) of every non-test source file, in sorted order."""
    if owner.root.is_file():
        yield owner.module, owner.root
        return
    for path in sorted(owner.root.rglob("*.py")):
        parts = path.relative_to(owner.root).with_suffix("").parts
        if any(p in ("tests", "test", "testing", "_vendor", "externals") for p in parts):
            continue
        dotted = ".".join((owner.module, *parts)).removesuffix(".__init__")
        yield dotted, path


def docstrings(path: Path) -> Iterator[tuple[str, str]]:
    """(qualified name, cleaned docstring) of the module, its classes and functions, in source order."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, UnicodeDecodeError):
        return
    stack: list[tuple[str, ast.AST]] = [("", tree)]
    seen: set[str] = set()  # a property's setter repeats its getter's name: the first is kept
    while stack:
        prefix, node = stack.pop(0)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                doc = ast.get_docstring(child, clean=True)
                if doc and name not in seen:
                    seen.add(name)
                    yield name, doc
                if isinstance(child, ast.ClassDef):
                    stack.append((f"{name}.", child))


def split(doc: str) -> tuple[str, list[str]]:
    """The summary line and the body's chunks (paragraphs grouped up to MAX_CHARS)."""
    paragraphs = [p.strip() for p in doc.split("\n\n") if p.strip()]
    summary = " ".join(paragraphs[0].split()) if paragraphs else ""
    chunks, current = [], ""
    for paragraph in paragraphs[1:]:
        if current and len(current) + len(paragraph) + 2 > MAX_CHARS:
            chunks.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph[: MAX_CHARS * 2]
    if current:
        chunks.append(current)
    return summary, [c for c in chunks if len(c) >= MIN_CHARS]


def _rank(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def build(out: Path, packages: tuple[str, ...] = DEFAULT_PACKAGES, stdlib: bool = True) -> dict:
    """Write chunks.jsonl, queries.jsonl, qrels.tsv and provenance.json into out; returns the provenance."""
    owners = (stdlib_owners() if stdlib else []) + [package_owner(p) for p in packages]
    chunks, questions, qrels = [], [], []
    per_owner: dict[str, dict] = {}
    for owner in owners:
        candidates, module_chunks = [], {}
        for module, path in module_files(owner):
            for qualname, doc in docstrings(path):
                summary, body = split(doc)
                ids = []
                for n, text in enumerate(body):
                    chunk_id = f"{module}:{qualname}:{n}"
                    ids.append(chunk_id)
                    chunks.append(
                        {
                            "id": chunk_id,
                            "workspace": owner.workspace,
                            "document": module,
                            "title": qualname,
                            "chunk_no": n,
                            "text": text,
                        }
                    )
                module_chunks.setdefault(module, []).extend(ids)
                if ids and len(summary.split()) >= SUMMARY_MIN_WORDS:
                    candidates.append((f"q:{module}:{qualname}", summary, module, ids))
        # The questions of a workspace: a deterministic sample by the hash of their text.
        candidates.sort(key=lambda c: _rank(c[0]))
        for qid, summary, module, ids in candidates[:QUESTIONS_PER_WORKSPACE]:
            questions.append({"id": qid, "text": summary, "workspace": owner.workspace})
            own = set(ids)
            qrels.extend((qid, c, 2) for c in ids)
            qrels.extend((qid, c, 1) for c in module_chunks[module] if c not in own)
        count = sum(len(v) for v in module_chunks.values())
        if count:
            per_owner[owner.workspace] = {"source": owner.source, "license": owner.license, "chunks": count}
    # A workspace with no chunks is no tenant; its questions (none possible) and qrels go with it.
    questions.sort(key=lambda q: q["id"])
    out.mkdir(parents=True, exist_ok=True)
    chunk_text = "".join(json.dumps(c, ensure_ascii=False, sort_keys=True) + "\n" for c in chunks)
    write_atomic(out / "chunks.jsonl", chunk_text)
    write_atomic(
        out / "queries.jsonl",
        "".join(json.dumps(q, ensure_ascii=False, sort_keys=True) + "\n" for q in questions),
    )
    write_atomic(
        out / "qrels.tsv", "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{c}\t{g}\n" for q, c, g in qrels)
    )
    provenance = {
        "corpus": "docstrings of installed Python packages (dimbench corpus public)",
        "python": sys.version.split()[0],
        "chunks": len(chunks),
        "questions": len(questions),
        "qrels": len(qrels),
        "workspaces": len(per_owner),
        "chunks_sha256": hashlib.sha256(chunk_text.encode()).hexdigest(),
        "owners": per_owner,
        "questions_are": "each a docstring's one-line summary, held out of the rows; qrels: the same "
        "object's body chunks grade 2, the same module's other chunks grade 1",
    }
    write_atomic(out / "provenance.json", json.dumps(provenance, indent=1, sort_keys=True) + "\n")
    return provenance
