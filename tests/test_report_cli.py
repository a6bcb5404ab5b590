"""Bad results input through the real CLI: one line on stderr naming the file (and line), non-zero exit."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from tests.results_fixture import write_results


@pytest.fixture
def results(tmp_path):
    return write_results(tmp_path / "fixture")


def report(directory):
    return run_cli("report", "--results", str(directory))


def replace_line(path, number, text):
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_a_missing_results_directory_is_one_line(tmp_path):
    assert_one_line_error(report(tmp_path / "nope"), "no results directory", "nope")


def test_a_missing_measurements_file_is_one_line(results):
    (results / "measurements.jsonl").unlink()
    assert_one_line_error(report(results), "measurements.jsonl is missing")


def test_a_missing_run_json_is_one_line(results):
    (results / "run.json").unlink()
    assert_one_line_error(report(results), "run.json is missing")


def test_a_malformed_run_json_is_one_line_naming_file_and_line(results):
    (results / "run.json").write_text('{\n  "profile": "x",\n  oops\n}\n')
    assert_one_line_error(report(results), "run.json:3:", "not valid JSON")


def test_a_malformed_measurement_line_is_one_line_naming_it(results):
    replace_line(results / "measurements.jsonl", 7, "{not json")
    assert_one_line_error(report(results), "measurements.jsonl:7:", "not valid JSON")


def test_a_measurement_missing_a_field_is_one_line_naming_it(results):
    path = results / "measurements.jsonl"
    row = json.loads(path.read_text().splitlines()[2])
    del row["recall_mean"]
    replace_line(path, 3, json.dumps(row))
    assert_one_line_error(report(results), "measurements.jsonl:3:", "missing field 'recall_mean'")


def test_a_measurement_with_an_unknown_arm_is_one_line_naming_it(results):
    path = results / "measurements.jsonl"
    row = json.loads(path.read_text().splitlines()[0])
    row["access"] = "superuser"
    replace_line(path, 1, json.dumps(row))
    assert_one_line_error(report(results), "measurements.jsonl:1:", "access = 'superuser'")


def test_empty_measurements_are_one_line(results):
    (results / "measurements.jsonl").write_text("\n")
    assert_one_line_error(report(results), "no measurements")


def test_a_measurement_with_a_bad_concurrency_key_is_one_line_naming_it(results):
    path = results / "measurements.jsonl"
    row = json.loads(path.read_text().splitlines()[4])
    row["qps"] = {"many": 3.0}
    replace_line(path, 5, json.dumps(row))
    assert_one_line_error(report(results), "measurements.jsonl:5:", "qps keys")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("recall_mean", 7.5, "recall_mean = 7.5 is not a share in [0, 1]"),
        ("recall_mean", -0.1, "recall_mean = -0.1 is not a share"),
        ("recall_ci95", [0.9, 1.2], "recall_ci95 must be two shares"),
        ("latency_ms", {"p50": -3.0}, "latency_ms values must be numbers ≥ 0"),
        ("k", 0, "k must be ≥ 1"),
    ],
)
def test_a_measurement_outside_its_range_is_one_line_naming_it(results, field, value, message):
    path = results / "measurements.jsonl"
    row = json.loads(path.read_text().splitlines()[1])
    row[field] = value
    replace_line(path, 2, json.dumps(row))
    assert_one_line_error(report(results), "measurements.jsonl:2:", message)
    assert not (results / "DECISION.md").exists()


def test_a_run_json_whose_corpus_is_not_an_object_is_one_line(results):
    data = json.loads((results / "run.json").read_text())
    data["runs"][0]["corpus"] = "small"
    (results / "run.json").write_text(json.dumps(data))
    assert_one_line_error(report(results), "runs[0].corpus has the wrong type (str)")
