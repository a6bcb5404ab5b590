"""What each option retrieves, in the record: per (scope, bucket), every stored embedding's exact-search
nDCG@10 (the model's own quality, no index involved) and the chosen configuration's measured nDCG@10 and
answer recall@10 with intervals, beside its paired shortfall against the best option."""

from __future__ import annotations

from typing import Any

import numpy as np

from dimbench.evidence.results import Results
from dimbench.evidence.rule import Decision, closest, config_of
from dimbench.evidence.text import fmt, interval
from dimbench.report.common import embedding_labels

OPTIONS = {  # stored embedding -> the model and dimension it stands for in the synthetic corpus
    "768": "text-embedding-3-small @ 768 (the 1536's Matryoshka prefix)",
    "1536": "text-embedding-3-small @ 1536",
    "ada": "text-embedding-ada-002 @ 1536 (its own synthetic model)",
}


def exact_by_cell(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """cell -> option -> mean exact nDCG@10 over the most queries any row of the cell was asked."""
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        cell = f"{r['scope']}/{r['bucket']}"
        if "per_query" in r and len(r["per_query"].get("qid", [])) > len(best.get(cell, {}).get("qid", [])):
            best[cell] = r["per_query"]
    out: dict[str, dict[str, float]] = {}
    for cell, per_query in best.items():
        out[cell] = {
            key.removeprefix("exact_ndcg10_"): float(np.mean([v for v in values if v is not None]))
            for key, values in per_query.items()
            if key.startswith("exact_ndcg10_") and any(v is not None for v in values)
        }
    return out


def quality_lines(results: Results, decision: Decision) -> list[str]:
    shown = decision.chosen or closest(decision)
    if decision.quality_tolerance is None or shown is None:
        return []
    rows = [r for r in results.rows if r.get("run_id") == decision.run_id]
    exact = exact_by_cell(rows)
    if not exact:
        return []
    options = sorted({o for by in exact.values() for o in by}, key=list(OPTIONS).index)
    mine = [r for r in rows if r.get("stage") == decision.stage and config_of(r) == shown.config]
    by_cell = {f"{r['scope']}/{r['bucket']}": r for r in mine}
    out = [
        "## Quality: what each option retrieves",
        "",
        "nDCG@10 against the corpus's graded labels. The option columns are exact search on each stored "
        "embedding (the model's own quality, no index); the last columns are the chosen configuration as "
        "measured, with its paired shortfall against the best option on the same queries (the rule allows "
        f"{decision.quality_tolerance:.0%} at the interval's lower bound). The labels and the models' gap are "
        "the generator's (synthetic): see the assumptions below.",
        "",
        "| cell | "
        + " | ".join(embedding_labels(results).get(o, OPTIONS[o]) for o in options)
        + f" | {'chosen' if decision.chosen else 'closest'}: nDCG@10 | answer recall@10 | shortfall |",
        "|---|" + "---|" * (len(options) + 3),
    ]
    for cell in sorted(exact):
        r = by_cell.get(cell)
        measured = (
            f"{fmt(r.get('ndcg10'))}{interval(r.get('ndcg10_ci95'))} | "
            f"{fmt(r.get('answer_recall10'))}{interval(r.get('answer_recall10_ci95'))} | "
            + (
                f"{r['ndcg10_gap']:+.1%} [{r['ndcg10_gap_ci95'][0]:+.1%}, {r['ndcg10_gap_ci95'][1]:+.1%}]"
                if r.get("ndcg10_gap_ci95")
                else "—"
            )
            if r
            else "not measured | | "
        )
        out.append(f"| {cell} | " + " | ".join(fmt(exact[cell].get(o)) for o in options) + f" | {measured} |")
    return [*out, ""]


ASSUMPTION_TEXT = {
    "matryoshka_tail_share": "`matryoshka_tail_share` (what the 768 prefix cannot see)",
    "ada_noise": "`ada_noise` (how far ada-002 falls below 3-small)",
}
NAMES = {"ada": "ada-002@1536", "1536": "3-small@1536", "768": "3-small@768"}
SOURCES = (
    "Calibration sources: OpenAI, 'New embedding models and API updates' (2024-01-25) — MTEB average "
    "ada-002 61.0, 3-small 62.3, 3-large 64.6 at full length, and 3-large shortened to 256 dims still beats "
    "ada-002 at 1536; so a 2× shortening (1536 → 768) of a Matryoshka-trained model should cost about 1 %, "
    "and ada-002 should retrieve about 2 % (61.0 / 62.3 − 1 = −2.1 %) below 3-small at 1536."
)


def sensitivity_section(results: Results) -> list[str]:
    """## Sensitivity of the quality assumption, from sensitivity.json (dimbench sensitivity)."""
    from dimbench.evidence.sensitivity import read_sensitivity

    if embedding_labels(results):  # real embeddings: no generator assumption to vary
        return []
    data = read_sensitivity(results.directory)
    out = ["## Sensitivity of the quality assumption", "", SOURCES, ""]
    if data is None:
        return [
            *out,
            "**Not measured** for this record: run `dimbench sensitivity RUN_DIR` before publishing to see "
            "how the option-level choice moves with the generator's quality assumptions.",
            "",
        ]
    calibrated = data.get("calibrated") or {}
    out += [
        f"Corpus `{data['corpus']['name']}` ({data['corpus']['chunks']:,} chunks) regenerated at each value "
        "(same tenants, documents, questions and labels), the other assumption held at its calibrated value; "
        "each option's exact-search nDCG@10 scored per (scope, bucket). An option is **kept** when, in every "
        f"cell, the lower bound of its paired shortfall against that cell's best option is within "
        f"{data['tolerance']:.0%} (the rule's quality test at exact search; an index only adds to a "
        "shortfall). **Index recall and latency were measured at the calibrated values only.**",
        "",
        "| assumption | value | worst-cell shortfall per option [95 % interval] | kept |",
        "|---|---|---|---|",
    ]
    for name, entries in data["series"].items():
        for e in entries:
            gaps = "; ".join(
                f"{NAMES.get(o, o)} {_gap(e, o)}"
                for o in sorted(e.get("worst_cell") or {}, key=list(NAMES).index)
            )
            mark = " (calibrated)" if e.get("calibrated") else ""
            kept = ", ".join(NAMES.get(o, o) for o in e["kept"]) or "none"
            out.append(f"| {ASSUMPTION_TEXT.get(name, name)} | {e['value']:g}{mark} | {gaps} | {kept} |")
    out.append("")
    for name, flips in (data.get("flips") or {}).items():
        where = (
            "; ".join(
                f"between {f['between'][0]:g} and {f['between'][1]:g} "
                f"({', '.join(NAMES.get(o, o) for o in f['from']) or 'none'} → "
                f"{', '.join(NAMES.get(o, o) for o in f['to']) or 'none'})"
                for f in flips
            )
            or f"nowhere in the values measured (calibrated: {calibrated.get(name)})"
        )
        out.append(f"- {ASSUMPTION_TEXT.get(name, name)}: the kept options change {where}.")
    return [*out, ""]


def _gap(entry: dict[str, Any], option: str) -> str:
    cell = entry["worst_cell"][option]
    o = entry["cells"][cell]["options"][option]
    if o["gap"] is None:
        return "—"
    lo, hi = o["gap_ci95"]
    return f"{o['gap']:+.1%} [{lo:+.1%}, {hi:+.1%}] ({cell})"


def sensitivity(results: Results, decision: Decision) -> list[str]:
    """The assumptions section's pointer to the sensitivity table."""
    from dimbench.evidence.sensitivity import read_sensitivity

    if read_sensitivity(results.directory) is None:
        return [
            "- How the option-level choice moves with the quality assumptions is **not measured** for this "
            "record (`dimbench sensitivity` was not run); index recall and latency are measured at one value."
        ]
    return [
        "- How the option-level choice moves with the quality assumptions: 'Sensitivity of the quality "
        "assumption' above (exact-search quality regenerated at each value; index recall and latency at the "
        "calibrated values only)."
    ]
