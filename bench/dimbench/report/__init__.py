"""The report: plots and DECISION.md, derived from run.json + measurements.jsonl only (never written back)."""

from __future__ import annotations

from pathlib import Path


def render(results: Path) -> list[Path]:
    """Write plots/ and DECISION.md for a results directory; returns what was written."""
    from dimbench.report import decision_record, plots, story
    from dimbench.report.load import Results, read_results
    from dimbench.vocabulary import DEFAULT_DESIGN, cell_value

    data = read_results(results)
    # The grid's plots show the first run's screening stage of the shared design: the whole grid, one run
    # (DECISION.md covers every run); the story's figures compare the designs.
    first = data.of_run(data.run["run_id"])
    screening = Results(
        first.directory,
        first.run,
        [r for r in first.rows if r["stage"] == "screening" and cell_value(r, "design") == DEFAULT_DESIGN],
    )
    written = plots.render_all(screening, results / "plots")
    written += story.render_all(data if len(data.runs) > 1 else first, results / "plots")
    written.append(decision_record.write(data, results / "DECISION.md"))
    return written
