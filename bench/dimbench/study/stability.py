"""`dimbench stability`: the study repeated on fresh index builds; does the decision hold?

hnsw builds are not deterministic and latencies drift with the machine, so one run's winner may be
another's runner-up. Each repeat is a complete run in its own directory (the corpus is reused, every
index is built again); the summary says whether the decisions — or the declared tie sets — agree.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from dimbench.files import write_json
from dimbench.study import runs
from dimbench.study.pipeline import StudyOptions, run


def stability(options: StudyOptions, repeats: int) -> tuple[Path, dict[str, Any]]:
    from dimbench.evidence.results import read_results
    from dimbench.evidence.rule import decide
    from dimbench.files import check_writable

    summary_dir = summary_directory(options.profile)
    check_writable(summary_dir, "the stability summary")  # refused before the first run, not after the last
    directories = []
    for n in range(repeats):
        print(f"stability: run {n + 1} of {repeats}", flush=True)
        directories.append(run(replace(options, fresh=True, out=None)))
    decisions = [decide(read_results(d)) for d in directories]
    chosen = [d.chosen.config.label if d.chosen else None for d in decisions]
    summary = {
        "profile": options.profile,
        "runs": [
            {"directory": str(d), "run_id": dec.run_id, "chosen": c, "tie_set": dec.tie_set}
            for d, dec, c in zip(directories, decisions, chosen, strict=True)
        ],
        "decision_agrees": len(set(chosen)) == 1 and chosen[0] is not None,
        "tie_sets_agree": len({json.dumps(d.tie_set) for d in decisions}) == 1,
        "every_choice_in_every_tie_set": all(c in d.tie_set for c in chosen for d in decisions),
    }
    path = summary_dir / f"stability-{runs.now().replace(':', '')}.json"
    write_json(path, summary)
    return path, summary


def summary_directory(profile: str) -> Path:
    """Where the summary goes: beside the runs, in runs/<the grid's profile>/ (a grid given as a file is
    known by the profile it names, not by its file name)."""
    from dimbench.study.grid import load_grid

    return runs.destination(load_grid(profile).profile, None)


def describe(summary: dict[str, Any]) -> str:
    lines = [
        f"{r['run_id']}: {r['chosen'] or 'nothing qualifies'} (tie set of {len(r['tie_set'])})"
        for r in summary["runs"]
    ]
    if summary["decision_agrees"]:
        lines.append(f"all {len(summary['runs'])} runs choose the same configuration")
    elif summary["every_choice_in_every_tie_set"]:
        lines.append(
            "the runs chose differently, but every choice is in every run's tie set: a tie, not a winner"
        )
    else:
        lines.append("the runs disagree: publish them together and the decision names the tie set")
    return "\n".join(lines)
