"""Strings a user controls never become SQL: hostile names travel as data, hostile options are refused."""

from __future__ import annotations

import json

from dimbench.corpus.generate import verify
from dimbench.corpus.load import load_corpus
from dimbench.corpus.reader import Corpus
from dimbench.database import db, schema
from dimbench.realdata.importer import import_file
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.test_realdata import unit

HOSTILE = [
    "x'); drop table workspaces; --",
    'w"; delete from documents; --',
    "$$ language plpgsql $$; select pg_sleep(10); --",
    "\\. \\copy workspaces to '/tmp/leak' \\",
    "Robert'); truncate document_chunks cascade;--",
]


def test_hostile_names_and_texts_are_stored_verbatim(tmp_path, new_database):
    rows = [
        {
            "workspace": name,
            "document": f"{name}#{i}",
            "text": f"{name} text {i}",
            "embedding_1536": unit(i, 1536),
        }
        for i, name in enumerate(HOSTILE)
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    directory = import_file(path, tmp_path / "corpus")
    dsn = new_database("hostile")
    with db.connect(dsn) as conn:
        schema.apply(conn)
        db.use_vectors(conn)
        load_corpus(conn, Corpus(directory, verify(directory)), progress=False)
        names = {r[0] for r in conn.execute("select name from workspaces").fetchall()}
        texts = {r[0] for r in conn.execute("select content from document_chunks").fetchall()}
        tables = conn.execute("select count(*) from pg_tables where schemaname = 'public'").fetchone()[0]
    assert names == set(HOSTILE)
    assert texts == {r["text"] for r in rows}
    assert tables == 6


def test_a_hostile_profile_name_is_just_an_unknown_profile():
    assert_one_line_error(run_cli("run", "--profile", "small; drop table workspaces"), "unknown profile")


def test_a_profile_cannot_reach_outside_the_grids():
    assert_one_line_error(run_cli("run", "--profile", "../../../etc/passwd"), "unknown profile")


def test_a_hostile_dsn_is_one_line_and_its_password_is_not_echoed():
    line = assert_one_line_error(
        run_cli(
            "schema", "apply", "--dsn", "postgresql://u:s3cret@127.0.0.1:1/x?options=-c%20role%3Dpostgres"
        ),
        "cannot connect",
    )
    assert "s3cret" not in line


def test_a_grid_naming_a_corpus_outside_datasets_is_refused(tmp_path, new_database):
    grid = tmp_path / "evil.toml"
    grid.write_text(
        'profile = "evil"\ncorpus = "../../../../etc/passwd"\nk = 10\ncolumn_types = ["vector768"]\n'
        '[[index]]\nkind = "exact"\n'
    )
    assert_one_line_error(
        run_cli("run", "--profile", str(grid), "--dsn", new_database("evil"), "--out", str(tmp_path / "out")),
        "corpus must be the name of a spec",
    )
