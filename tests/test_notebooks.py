"""Every architect notebook runs headless against the results fixture and fails on any error."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.results_fixture import write_manifest, write_results

FOLDER = Path(__file__).parents[1] / "notebooks"
# Named, not globbed: a deleted or renamed notebook fails here instead of silently leaving the suite.
NOTEBOOKS = [FOLDER / "corpus.ipynb", FOLDER / "decision.ipynb"]


def execute(path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the kernel inherits the environment
    notebook = nbformat.read(path, as_version=4)
    # Raises CellExecutionError on the first failing cell.
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def test_every_notebook_in_the_folder_is_run_by_this_suite():
    assert sorted(FOLDER.glob("*.ipynb")) == NOTEBOOKS


def test_the_decision_notebook_reads_the_results_it_is_pointed_at(tmp_path, monkeypatch):
    """Pointed at a results directory that does not exist, it must fail, not fall back to other
    results (the checkout's published ones, or figures typed into a cell)."""
    from nbclient.exceptions import CellExecutionError

    with pytest.raises(CellExecutionError):
        execute(FOLDER / "decision.ipynb", {"DIMBENCH_RESULTS": str(tmp_path / "absent")}, monkeypatch)


def test_the_corpus_notebook_reads_the_manifest_it_is_pointed_at(tmp_path, monkeypatch):
    results = write_results(tmp_path / "results")
    manifest = write_manifest(tmp_path / "corpus")
    env = {"DIMBENCH_RESULTS": str(results), "DIMBENCH_CORPUS": str(manifest)}
    notebook = execute(FOLDER / "corpus.ipynb", env, monkeypatch)
    text = "".join(str(o.get("text", "")) for o in outputs(notebook))
    assert f"manifest: {manifest}" in text


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        assert not outputs(notebook), path.name
        assert all(c.get("execution_count") is None for c in notebook.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_notebook_runs_without_errors(path, tmp_path, monkeypatch):
    results = write_results(tmp_path / "results")
    manifest = write_manifest(tmp_path / "corpus")
    notebook = execute(
        path, {"DIMBENCH_RESULTS": str(results), "DIMBENCH_CORPUS": str(manifest)}, monkeypatch
    )
    assert not [o for o in outputs(notebook) if o.get("output_type") == "error"]


def test_the_decision_notebook_shows_the_fixture_winner(tmp_path, monkeypatch):
    results = write_results(tmp_path / "results")
    notebook = execute(FOLDER / "decision.ipynb", {"DIMBENCH_RESULTS": str(results)}, monkeypatch)
    text = "".join(
        str(o.get("data", {}).get("text/markdown", "")) + str(o.get("text", "")) for o in outputs(notebook)
    )
    assert "Standardize on vector768 · hnsw(ef_construction=64,m=16) · ef_search=100" in text
    assert "— (closest:" in text  # the what-if reaches targets nothing meets


def test_the_corpus_notebook_degrades_without_a_manifest_or_statistics(tmp_path, monkeypatch):
    results = write_results(tmp_path / "results", with_statistics=False)
    monkeypatch.delenv("DIMBENCH_CORPUS", raising=False)
    notebook = execute(FOLDER / "corpus.ipynb", {"DIMBENCH_RESULTS": str(results)}, monkeypatch)
    text = "".join(str(o.get("text", "")) for o in outputs(notebook))
    assert "records no statistics" in text
    assert "pairwise cosine: not recorded" in text


def plot_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [
        c
        for c in notebook.cells
        if c.cell_type == "code" and "show(" in c.source and "def show" not in c.source
    ]


def test_every_plot_cell_of_the_decision_notebook_shows_a_figure(tmp_path, monkeypatch):
    results = write_results(tmp_path / "results")
    notebook = execute(FOLDER / "decision.ipynb", {"DIMBENCH_RESULTS": str(results)}, monkeypatch)
    cells = plot_cells(notebook)
    assert len(cells) >= 7
    for cell in cells:
        images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert images, cell.source.splitlines()[-1]
        assert all(len(o["data"]["image/png"]) > 1000 for o in images)
        assert "not drawn" not in "".join(str(o.get("text", "")) for o in cell.outputs)


def what_if_choices(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """recall target -> choice, from the what-if table's rows without a latency budget."""
    cell = next(c for c in notebook.cells if c.cell_type == "code" and "def choice" in c.source)
    table = "".join(str(o.get("data", {}).get("text/markdown", "")) for o in cell.outputs)
    rows = [line.strip("|").split("|") for line in table.splitlines()[2:]]
    return {target.strip(): choice.strip() for target, budget, choice in rows if budget.strip() == "none"}


def rule_choices(results: Path, targets: list[str]) -> dict[str, str]:
    """target -> the rule's choice on every measured row of the fixture (no pre-selection): the label,
    or "—" when nothing qualifies."""
    from dimbench.evidence.results import read_results
    from dimbench.evidence.rule import decide

    read = read_results(results)
    out = {}
    for target in targets:
        d = decide(read, float(target))
        out[target] = d.chosen.config.label if d.chosen else "—"
    return out


def what_if_faults(shown: dict[str, str], expected: dict[str, str]) -> list[str]:
    """What is wrong with a what-if table against the rule: a target whose shown choice is not the rule's,
    or no two targets (which straddle a measured boundary) with different choices."""
    label = {t: c.split(" (", 1)[0] if not c.startswith("—") else "—" for t, c in shown.items()}
    faults = [
        f"{t}: shows {label[t]!r}, the rule chooses {expected[t]!r}" for t in label if label[t] != expected[t]
    ]
    chosen = {c for c in expected.values() if c != "—"}
    if len(chosen) < 2:
        faults.append(f"the targets {sorted(shown)} straddle no boundary where the choice moves")
    return faults


def test_the_what_if_choice_moves_when_the_target_crosses_a_measured_boundary(tmp_path, monkeypatch):
    """Each target's choice is the rule's on every measured row (computed here from the fixture), and two
    targets straddling a measured boundary choose differently: a what-if over pre-selected candidates
    shows one choice throughout and fails (test_the_what_if_check_fails_for_pre_selected_candidates)."""
    results = write_results(tmp_path / "results")
    notebook = execute(FOLDER / "decision.ipynb", {"DIMBENCH_RESULTS": str(results)}, monkeypatch)
    choices = what_if_choices(notebook)
    assert len(choices) >= 3
    assert what_if_faults(choices, rule_choices(results, sorted(choices))) == []


def test_the_what_if_check_fails_for_pre_selected_candidates(tmp_path):
    """The old notebook's failure: candidates pre-selected at one target, so every target shows its choice."""
    results = write_results(tmp_path / "results")
    expected = rule_choices(results, ["0.800", "0.900", "0.950", "0.990", "1.000"])
    frozen = expected["0.950"]
    shown = {t: f"{frozen} (1.00 ms)" for t in expected}
    assert any(c not in ("—", frozen) for c in expected.values()), expected  # the fixture has a boundary
    assert what_if_faults(shown, expected)


def test_the_corpus_notebook_draws_tenant_sizes_from_a_format_2_run(tmp_path, monkeypatch):
    """Without a manifest it falls back to run.json's corpus block, which format 2 nests under runs[]."""
    results = write_results(tmp_path / "results")
    monkeypatch.delenv("DIMBENCH_CORPUS", raising=False)
    notebook = execute(FOLDER / "corpus.ipynb", {"DIMBENCH_RESULTS": str(results)}, monkeypatch)
    text = "".join(str(o.get("text", "")) for o in outputs(notebook))
    assert "manifest: none found" not in text
    skew = next(c for c in notebook.cells if c.cell_type == "code" and "workspaces_per_bucket" in c.source)
    assert any("image/png" in o.get("data", {}) for o in skew.outputs)
