"""The report: plots and DECISION.md, derived from run.json + measurements.jsonl only (never written back)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path


def render_run(out: Path) -> None:
    """A finished run's report: DECISION.md always; the plots too when matplotlib (the `report` extra) is
    installed."""
    from dimbench.evidence.results import read_results
    from dimbench.report import decision_record

    if importlib.util.find_spec("matplotlib") is None:
        decision_record.write(read_results(out), out / "DECISION.md")
        print(
            f"plots skipped: they need matplotlib (pip install 'dimbench[report]', then dimbench report "
            f"--results {out})",
            file=sys.stderr,
        )
        return
    render(out)


def render(results: Path) -> list[Path]:
    """Write plots/ and DECISION.md for a results directory; returns what was written.

    Everything is rendered into a temporary directory first and swapped in whole once it all succeeded:
    a report that fails half way leaves the previous plots and DECISION.md exactly as they were.
    """
    from dimbench import files
    from dimbench.evidence.results import read_results
    from dimbench.evidence.rule import decide
    from dimbench.report import decision_record, live_plots, migration_plot, plots, race_plot, story

    data = read_results(results)
    # plots/ is replaced whole: refuse before rendering if it is not one dimbench wrote.
    files.refuse_unless_owned(results / "plots", ("plots",), "results directory")
    # The grid's plots show the first run's screening stage of the shared design (the whole grid, one run;
    # DECISION.md covers every run) and the rule's choice, drawn and highlighted in every figure.
    first = data.of_run(data.run["run_id"])
    decision = decide(data)
    screening = plots.grid_results(data, decision.chosen)
    files.clear_temporaries(results, "report")
    staging = files.marked_temporary(results, "report")
    try:
        written = plots.render_all(screening, staging / "plots", decision.recall_target, decision.chosen)
        written += story.render_all(data if len(data.runs) > 1 else first, staging / "plots")
        written += race_plot.render(first, staging / "plots")
        written += live_plots.render(data.live, staging / "plots")
        written += migration_plot.render(data.live or {}, staging / "plots")
        written.append(decision_record.write(data, staging / "DECISION.md"))
        files.mark(staging / "plots", "plots")
        files.swap_in(staging / "plots", results / "plots", ("plots",))
        os.replace(staging / "DECISION.md", results / "DECISION.md")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [results / path.relative_to(staging) for path in written]
