"""The report: plots and DECISION.md, derived from run.json + measurements.jsonl only (never written back)."""

from __future__ import annotations

from pathlib import Path


def render(results: Path) -> list[Path]:
    """Write plots/ and DECISION.md for a results directory; returns what was written."""
    from dimbench.report import decision_record, plots
    from dimbench.report.load import read_results

    data = read_results(results)
    written = plots.render_all(data, results / "plots")
    written.append(decision_record.write(data, results / "DECISION.md"))
    return written
