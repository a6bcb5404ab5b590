"""Find or make the corpus for a spec: cached under .dimbench/corpora/<name>-<digest>-g<version>/."""

from __future__ import annotations

import json
from pathlib import Path

from dimbench import files
from dimbench.corpus import generate
from dimbench.corpus.reader import Corpus
from dimbench.corpus.spec import load_spec
from dimbench.paths import state_dir


def corpora_dir() -> Path:
    return state_dir() / "corpora"


def ensure_corpus(
    spec_path: str | Path,
    out: str | Path | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    log=print,
) -> Corpus:
    """The verified corpus for this spec, generated if missing (or if `force`: only a corpus directory
    dimbench made is ever replaced)."""
    spec = load_spec(spec_path)
    directory = Path(out) if out else corpora_dir() / generate.corpus_dirname(spec)
    if force:  # refused in one line unless dimbench made this corpus directory (its marker)
        files.remove_owned(directory, "corpus")
    if directory.exists() and not files.is_empty_dir(directory):
        manifest = generate.verify(directory)
        log(f"corpus {spec.name}: reusing {directory} (spec and generator unchanged, checksums verified)")
    else:
        if directory.exists():
            directory.rmdir()  # empty: generate() renames the finished corpus into its place
        files.ensure_writable(directory.parent, "the corpus")
        generate.generate(spec, directory, progress=progress)
        manifest = json.loads((directory / "manifest.json").read_text())
        log(
            f"corpus {spec.name}: generated {manifest['counts']['chunks']} chunks in {directory} "
            f"({manifest['generate_seconds']} s)"
        )
    return Corpus(directory, manifest)
