"""Where dimbench finds its shipped files and keeps its state, from a checkout and from a wheel."""

from __future__ import annotations

from pathlib import Path

import pytest

from dimbench import paths
from dimbench.corpus.spec import load_spec
from dimbench.errors import DimbenchError
from dimbench.study.grid import load_grid

CHECKOUT = Path(__file__).parents[1]


def test_migrations_specs_and_grids_are_package_data():
    resources = Path(paths.__file__).parent / "resources"
    assert paths.schema_dir() == resources / "schema" and paths.datasets_dir() == resources / "datasets"
    assert paths.grids_dir() == resources / "grids"
    assert len(list(paths.schema_dir().glob("*.sql"))) >= 11
    assert {p.stem for p in paths.datasets_dir().glob("*.toml")} >= {"tiny", "smoke", "small"}
    assert {p.stem for p in paths.grids_dir().glob("*.toml")} >= {"tiny", "smoke", "small"}


@pytest.mark.parametrize(
    ("link", "packaged"), [("schema", "schema"), ("datasets", "datasets"), ("bench/grids", "grids")]
)
def test_the_checkout_paths_are_the_package_files(link, packaged):
    assert (CHECKOUT / link).is_symlink()
    assert (CHECKOUT / link).resolve() == (Path(paths.__file__).parent / "resources" / packaged).resolve()


def test_state_goes_to_dimbench_home_when_set(monkeypatch, tmp_path):
    monkeypatch.setenv("DIMBENCH_HOME", str(tmp_path / "home"))
    assert paths.state_dir() == tmp_path / "home"


def test_state_goes_to_the_checkout_when_running_from_one(monkeypatch):
    monkeypatch.delenv("DIMBENCH_HOME", raising=False)
    assert paths.checkout_root() == CHECKOUT.resolve()
    assert paths.state_dir() == CHECKOUT.resolve() / ".dimbench"


def test_state_goes_to_the_users_data_directory_for_an_installed_wheel(monkeypatch, tmp_path):
    monkeypatch.delenv("DIMBENCH_HOME", raising=False)
    monkeypatch.setattr(paths, "checkout_root", lambda: None)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert paths.state_dir() == tmp_path / "xdg" / "dimbench"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert paths.state_dir() == tmp_path / "user" / ".local" / "share" / "dimbench"


def test_a_spec_is_a_file_or_the_name_of_a_shipped_one(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no datasets/ here: names resolve inside the package
    shipped = paths.datasets_dir() / "tiny.toml"
    assert load_spec("tiny") == load_spec("datasets/tiny.toml") == load_spec(shipped)
    own = tmp_path / "mine.toml"
    own.write_text(shipped.read_text())
    assert load_spec(own).name == "mine"


def test_a_missing_spec_path_is_not_replaced_by_a_shipped_one(tmp_path):
    with pytest.raises(DimbenchError, match="no corpus spec at .*shipped spec: .*tiny"):
        load_spec(tmp_path / "elsewhere" / "tiny.toml")


def test_a_grid_is_a_profile_name_or_a_file(tmp_path):
    own = tmp_path / "mine.toml"
    own.write_text((paths.grids_dir() / "tiny.toml").read_text())
    assert load_grid("tiny").profile == load_grid(own).profile == "tiny"
