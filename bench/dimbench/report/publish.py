"""Publishing: a user's finished runs become results/<profile>/ — the only way anything is written there.

Publishing refuses a run that did not finish or lacks planned cells, and runs that do not share one grid
and one corpus (their decisions would not be comparable). The published directory holds every run's
rows (each names its run) and a run.json listing those runs; the report is rendered from them. Raw
per-query files stay in the run directories.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dimbench import files
from dimbench.errors import DimbenchError
from dimbench.files import ensure_writable, write_atomic
from dimbench.paths import plain_name, published_dir
from dimbench.study import runs
from dimbench.vocabulary import cell_key

SHARED = ("grid", "corpus")  # identity parts every published run must share


def publish(run_dirs: list[Path], dest: Path | None = None) -> Path:
    from dimbench.evidence.results import read_results
    from dimbench.report import render

    if not run_dirs:
        raise DimbenchError("publish needs at least one run directory")
    gathered, rows = [], []
    for directory in run_dirs:
        results = read_results(directory)
        for run in results.runs:
            why = runs.complete(run, results.rows)
            if why:
                raise DimbenchError(f"cannot publish {directory}: {why}")
        gathered += results.runs
        rows += results.rows
    ids = [r["run_id"] for r in gathered]
    if len(set(ids)) != len(ids):
        raise DimbenchError(f"cannot publish: run {next(i for i in ids if ids.count(i) > 1)} given twice")
    first = gathered[0]
    # A scale profile's runs share the grid and differ in corpus by design.
    shared = ("grid",) if is_scale_grid(first) else SHARED
    for run in gathered[1:]:
        for part in shared:
            ours, theirs = first["identity"][part], run["identity"][part]
            if ours != theirs:
                diff = "; ".join(runs.differences({part: ours}, {part: theirs}))
                raise DimbenchError(
                    f"cannot publish runs {first['run_id']} and {run['run_id']} together: {diff}"
                )
    profile = plain_name(first["profile"], "profile", "run.json")
    dest = dest or published_dir(profile)
    # Only a directory publish made (its marker), an empty one or a new one is ever replaced.
    files.refuse_unless_owned(dest, ("published",), "--to")
    ensure_writable(dest.parent)
    files.clear_temporaries(dest.parent, dest.name)
    # Build the new directory beside the old one, then swap: a failure leaves the published one intact.
    staging = files.marked_temporary(dest.parent, dest.name)
    try:
        lines = sorted(
            (json.dumps(r, sort_keys=True) for r in rows), key=lambda line: cell_key(json.loads(line))
        )
        write_atomic(staging / "measurements.jsonl", "".join(line + "\n" for line in lines))
        runs.write_runs(staging, profile, gathered)
        # the quality assumption's sensitivity (dimbench sensitivity) and the live stage, measured on the
        # runs' one corpus: the first run that has each
        for name in ("sensitivity.json", "live.json"):
            found = next((Path(d) / name for d in run_dirs if (Path(d) / name).is_file()), None)
            if found is not None:
                write_atomic(staging / name, found.read_bytes())
        render(staging)
        files.mark(staging, "published")
        files.swap_in(staging, dest, ("published",))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def is_scale_grid(run: dict) -> bool:
    """Did the run measure a grid with `corpora` (a scale profile)? Its shipped grid, same digest."""
    from dimbench.study.grid import load_grid

    try:
        grid = load_grid(run["profile"])
    except DimbenchError:
        return False
    return bool(grid.corpora) and runs.digest(grid.raw) == (run["identity"].get("grid") or {}).get("digest")


def compare_with_published(run_dir: Path, profile: str) -> str:
    """One or two lines: does this run's decision agree with the published one, and if not, by how much?"""
    from dimbench.evidence.results import read_results
    from dimbench.evidence.rule import decide, decide_runs
    from dimbench.evidence.text import interval

    published = published_dir(profile)
    if not (published / "run.json").exists():
        return f"no published results for profile {profile} to compare with"
    try:
        theirs = decide_runs(read_results(published))
    except DimbenchError as exc:
        return f"the published results cannot be read ({exc})"
    mine = decide(read_results(run_dir))
    yours = mine.chosen.config.label if mine.chosen else None
    if theirs.agreed is None and len(theirs.decisions) > 1:
        label = f"the tie set {{{', '.join(theirs.tie_set)}}}"
        same = yours in theirs.tie_set
    else:
        label = theirs.chosen[0] or "no configuration"
        same = yours == theirs.chosen[0]
    if same:
        return f"your decision agrees with the published one ({published}): {yours or 'nothing qualifies'}"
    lines = [f"your decision differs from the published one ({published}): published {label}, yours {yours}"]
    if theirs.agreed:
        twin = next((c for c in mine.candidates if c.config.label == theirs.agreed), None)
        if twin is None:
            lines.append("  the published configuration was not among your run's confirmed candidates")
        else:
            tied = " (within your tie set)" if twin in mine.tied else ""
            lines.append(
                f"  on your run the published configuration measured worst p95 {twin.worst_p95_ms:.2f}"
                f"{interval(twin.worst_p95_ci, 2)} ms, weakest recall lower bound "
                f"{(twin.min_recall_lower or 0):.3f}: {'meets' if twin.qualifies else 'fails'} the rule{tied}"
            )
    return "\n".join(lines)
