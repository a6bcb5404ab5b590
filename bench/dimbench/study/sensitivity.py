"""How the option-level choice moves with the generator's quality assumptions (`dimbench sensitivity`).

For each value of `matryoshka_tail_share` (what the 768 prefix loses) and of `ada_noise` (how far ada-002
falls below 3-small), the corpus's embeddings are generated again — same spec, same tenants, documents,
questions and labels (none of those depend on either value) — and each option's exact-search nDCG@10 is
scored per (scope, bucket) against the same graded labels the study uses. Which options stay within the
quality tolerance of the best there is the rule's quality test at exact search; an index only adds to
a shortfall. Index recall and latency are NOT remeasured: they are the run's, at the calibrated values.

In memory and blocked (nothing written but the result); deterministic (the spec's seeds); no database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from dimbench import files, stats
from dimbench.corpus import embeddings, generate, groundtruth
from dimbench.corpus.spec import BUCKETS, FIELDS, Spec
from dimbench.corpus.structure import build_structure
from dimbench.errors import DimbenchError
from dimbench.evidence.results import read_run
from dimbench.evidence.rule import QUALITY_TOLERANCE

FILE = "sensitivity.json"  # evidence/sensitivity.py reads it back
FORMAT = 1
# The values each assumption is measured at besides the spec's own (the calibrated one).
TAIL_SHARES = (0.002, 0.02, 0.15, 0.30)
ADA_NOISES = (0.25, 0.45, 0.6, 0.8)  # 0.25: as noisy as 3-small; 0.45 calibrated (small.toml)
OPTIONS = ("ada", "1536", "768")  # the team's options: ada-002@1536, 3-small@1536, 3-small@768
ASSUMPTIONS = {"matryoshka_tail_share": ("768", "1536"), "ada_noise": ("ada",)}  # what each one moves


def labels(spec: Spec, structure, plan: dict[str, np.ndarray], source: np.ndarray) -> list[dict[int, int]]:
    """Each question's graded labels by chunk index, as the study grades a generated corpus
    (inputs.study_queries): the source document's chunks 2, same-topic documents it may see 1."""
    by_user = structure.user_workspaces()
    doc_ws, doc_topic = structure.doc_workspace, structure.doc_topic
    cpd = structure.chunks_per_document
    out = []
    for i in range(len(source)):
        scope_all = int(plan["scope"][i]) == 1
        filter_ws = sorted(by_user[int(plan["user"][i])]) if scope_all else [int(plan["workspace"][i])]
        s = int(source[i])
        grades = {c: 2 for c in range(s * cpd, (s + 1) * cpd)}
        same = np.flatnonzero(np.isin(doc_ws, filter_ws) & (doc_topic == doc_topic[s]))
        for d in same[:200].tolist():
            if d != s:
                grades.update({c: 1 for c in range(d * cpd, (d + 1) * cpd)})
        out.append(grades)
    return out


def exact_ndcg(spec: Spec, options: Sequence[str]) -> dict[str, Any]:
    """Per question: its cell ("scope/bucket") and each option's exact-search nDCG@10 on `spec`'s
    embeddings (generated again in blocks, never written)."""
    if "ada" in options and not spec.ada:
        spec = replace(spec, ada=True)
    structure = build_structure(spec)
    proj = embeddings.projection(spec)
    topics, docs, doc_tails = generate.latents(spec, structure)
    plan = generate.plan_queries(spec, structure)
    asked, source = generate.query_vectors(spec, structure, proj, topics, docs, doc_tails, plan)
    visible = groundtruth.visibility(structure, plan)
    chunk_ws = np.repeat(np.arange(len(structure.ws_documents)), structure.ws_chunks)
    tops = {o: groundtruth.TopK(len(source), 10) for o in options}
    n = structure.n_chunks
    for start in range(0, n, spec.block_rows):
        stop = min(n, start + spec.block_rows)
        emb, ada = generate.chunk_block(spec, proj, docs, doc_tails, start, stop)
        rows = {"1536": emb, "768": embeddings.shorten(emb), "ada": ada}
        hidden = ~visible[:, chunk_ws[start:stop]]
        for option in options:
            d = (1.0 - asked[option] @ rows[option].T).astype(np.float32)
            d[hidden] = np.inf
            tops[option].push(d, start)
    graded = labels(spec, structure, plan, source)
    scores: dict[str, list[float | None]] = {}
    for option in options:
        ids, _ = tops[option].result()
        scores[option] = [
            stats.ndcg_at_k([g.get(int(c), 0) for c in row if c >= 0], sorted(g.values(), reverse=True), 10)
            for row, g in zip(ids, graded, strict=True)
        ]
    cells = [
        f"{generate.SCOPES[int(s)]}/{BUCKETS[int(b)]}"
        for s, b in zip(plan["scope"], plan["bucket"], strict=True)
    ]
    return {"cell": cells, "ndcg10": scores}


def judge(per_query: dict[str, Any], tolerance: float) -> dict[str, Any]:
    """Per cell: each option's mean exact nDCG@10 (interval) and its paired shortfall against the cell's
    best option; per option: kept when that shortfall's lower bound is within `tolerance` in every cell
    (the rule's quality test, at exact search)."""
    options = sorted(per_query["ndcg10"], key=OPTIONS.index)
    cells: dict[str, Any] = {}
    for cell in sorted(set(per_query["cell"])):
        picks = [i for i, c in enumerate(per_query["cell"]) if c == cell]
        pairs = {o: [per_query["ndcg10"][o][i] for i in picks] for o in options}
        scored = [i for i in range(len(picks)) if all(pairs[o][i] is not None for o in options)]
        if not scored:
            continue
        values = {o: [float(pairs[o][i]) for i in scored] for o in options}
        best = max(options, key=lambda o: (float(np.mean(values[o])), -options.index(o)))
        entry: dict[str, Any] = {"queries": len(scored), "best": best, "options": {}}
        for o in options:
            gap = stats.paired_relative_gap(values[o], values[best]) if o != best else (0.0, [0.0, 0.0])
            entry["options"][o] = {
                "ndcg10": float(np.mean(values[o])),
                "ndcg10_ci95": stats.mean_ci(values[o]),
                "gap": gap[0] if gap else None,
                "gap_ci95": gap[1] if gap else None,
            }
        cells[cell] = entry
    kept = [
        o
        for o in options
        if cells
        and all(
            e["options"][o]["gap_ci95"] is not None and e["options"][o]["gap_ci95"][0] >= -tolerance
            for e in cells.values()
        )
    ]
    worst = {
        o: min(cells, key=lambda c: (cells[c]["options"][o]["gap_ci95"] or [-1.0])[0])
        for o in options
        if cells
    }
    return {"cells": cells, "kept": kept, "worst_cell": worst}


def spec_of(run: dict[str, Any], where: str) -> Spec:
    """The generator spec a run's corpus was made from (older runs lack newer keys: their defaults)."""
    corpus = run.get("corpus") or {}
    raw = corpus.get("spec")
    if not isinstance(raw, dict) or corpus.get("provenance") or corpus.get("embedding"):
        raise DimbenchError(
            f"{where}: sensitivity varies the generator's assumptions; this run's corpus was not generated "
            "from a spec (an imported corpus's quality is its own)"
        )
    values = {k: default for k, (_, default) in FIELDS.items()} | {
        k: v for k, v in raw.items() if k in FIELDS
    }
    missing = [k for k, v in values.items() if v is None]
    if missing or "name" not in raw:
        raise DimbenchError(f"{where}: the run's corpus spec lacks {(missing or ['name'])[0]}")
    return Spec(name=str(raw["name"]), **values)


def measure(
    spec: Spec,
    tail_shares: Sequence[float] = TAIL_SHARES,
    ada_noises: Sequence[float] = ADA_NOISES,
    tolerance: float = QUALITY_TOLERANCE,
    progress: bool = True,
) -> dict[str, Any]:
    """The option-level quality test at each value of each assumption, the other held at the spec's."""
    for name, values in (("matryoshka_tail_share", tail_shares), ("ada_noise", ada_noises)):
        if len(set(values)) < 3:
            raise DimbenchError(
                f"sensitivity: {name} needs at least three distinct values, got {list(values)}"
            )
    if not all(0 <= v < 1 for v in tail_shares):
        raise DimbenchError(
            f"sensitivity: matryoshka_tail_share values must be in [0, 1), got {list(tail_shares)}"
        )
    if not all(0 <= v <= 100 for v in ada_noises):
        raise DimbenchError(f"sensitivity: ada_noise values must be in [0, 100], got {list(ada_noises)}")
    if not 0 < tolerance < 1:
        raise DimbenchError(f"sensitivity: the quality tolerance must be in (0, 1), got {tolerance}")
    calibrated = {"matryoshka_tail_share": spec.matryoshka_tail_share, "ada_noise": spec.ada_noise}
    say = print if progress else (lambda *_a, **_k: None)
    say(f"sensitivity: {spec.name} at the calibrated values {calibrated} …", flush=True)
    base = exact_ndcg(spec, OPTIONS)
    series: dict[str, list[dict[str, Any]]] = {}
    for name, values in (("matryoshka_tail_share", tail_shares), ("ada_noise", ada_noises)):
        moved = ASSUMPTIONS[name]
        series[name] = []
        for value in sorted(set(values) | {calibrated[name]}):  # the calibrated value always shown
            if value == calibrated[name]:
                per_query = base
            else:
                say(f"sensitivity: {name} = {value} …", flush=True)
                again = exact_ndcg(replace(spec, **{name: value}), moved)
                per_query = {"cell": base["cell"], "ndcg10": {**base["ndcg10"], **again["ndcg10"]}}
            series[name].append(
                {"value": value, "calibrated": value == calibrated[name], **judge(per_query, tolerance)}
            )
    return {
        "format": FORMAT,
        "corpus": {"name": spec.name, "digest": spec.digest, "chunks": spec.chunks},
        "calibrated": calibrated,
        "tolerance": tolerance,
        "measured": "exact-search nDCG@10 per option and (scope, bucket), corpus regenerated at each value",
        "not_measured": "index recall and latency: measured by the run at the calibrated values only",
        "series": series,
        "flips": {name: flips(entries) for name, entries in series.items()},
    }


def flips(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where the kept set changes between neighbouring values of one assumption."""
    return [
        {"between": [a["value"], b["value"]], "from": a["kept"], "to": b["kept"]}
        for a, b in zip(entries, entries[1:], strict=False)
        if a["kept"] != b["kept"]
    ]


def run_sensitivity(
    directory: Path,
    tail_shares: Sequence[float] = TAIL_SHARES,
    ada_noises: Sequence[float] = ADA_NOISES,
    tolerance: float = QUALITY_TOLERANCE,
    progress: bool = True,
) -> Path:
    """sensitivity.json beside a run's run.json (the study writes it; the report reads it back)."""
    directory = Path(directory)
    if not (directory / "run.json").is_file():
        raise DimbenchError(f"{directory}: no run.json (give a run directory)")
    if files.owned(directory, "published"):
        # results/ is publish's alone: measure on the run, then publish carries sensitivity.json over
        raise DimbenchError(
            f"{directory} is a published results directory: give the run directory it came from"
        )
    runs = read_run(directory / "run.json")
    spec = spec_of(runs[0], str(directory / "run.json"))
    result = measure(spec, tail_shares, ada_noises, tolerance, progress)
    files.write_json(directory / FILE, result)
    return directory / FILE


def values(text: str) -> tuple[float, ...]:
    """A comma-separated list of numbers (argparse type)."""
    import argparse
    import math

    try:
        found = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not all(math.isfinite(v) for v in found):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return found


def cmd_sensitivity(args) -> int:
    out = run_sensitivity(
        Path(args.run_dir), args.tail_shares, args.ada_noises, args.tolerance, not args.no_progress
    )
    print(f"sensitivity: {out}")
    return 0


def register(subparsers) -> None:
    """`dimbench sensitivity RUN_DIR`: registered by the CLI through `_extra_commands()`."""
    from dimbench.cliargs import positive_float

    p = subparsers.add_parser(
        "sensitivity",
        help="each option's exact nDCG@10 as the generator's quality assumptions move (sensitivity.json)",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory: its corpus spec is varied")
    p.add_argument(
        "--tail-shares",
        type=values,
        default=TAIL_SHARES,
        help=f"matryoshka_tail_share values (default {','.join(map(str, TAIL_SHARES))})",
    )
    p.add_argument(
        "--ada-noises",
        type=values,
        default=ADA_NOISES,
        help=f"ada_noise values (default {','.join(map(str, ADA_NOISES))})",
    )
    p.add_argument(
        "--tolerance",
        type=positive_float,
        default=QUALITY_TOLERANCE,
        help=f"the rule's quality tolerance (default {QUALITY_TOLERANCE})",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress lines")
    p.set_defaults(handler=cmd_sensitivity)
