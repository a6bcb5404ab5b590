"""The report: plots and DECISION.md, derived from run.json + measurements.jsonl only (never written back)."""

from __future__ import annotations

from pathlib import Path


def render(results: Path) -> list[Path]:
    """Write plots/ and DECISION.md for a results directory; returns what was written."""
    from dimbench.report import decision_record, plots
    from dimbench.report.load import Results, read_results

    data = read_results(results)
    # Plots show the first run's screening stage: the whole grid, one run (DECISION.md covers every run).
    first = data.of_run(data.run["run_id"])
    screening = Results(first.directory, first.run, [r for r in first.rows if r["stage"] == "screening"])
    written = plots.render_all(screening, results / "plots")
    written.append(decision_record.write(data, results / "DECISION.md"))
    return written
