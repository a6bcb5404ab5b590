"""Find or make the corpus for a spec: cached under .dimbench/corpora/<name>-<digest>-g<version>/."""

from __future__ import annotations

import json
from pathlib import Path

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
    """The verified corpus for this spec, generated if missing (or if `force`)."""
    import shutil

    spec = load_spec(spec_path)
    directory = Path(out) if out else corpora_dir() / generate.corpus_dirname(spec)
    if force and directory.exists():
        shutil.rmtree(directory)
    if directory.exists():
        manifest = generate.verify(directory)
        log(f"corpus {spec.name}: reusing {directory} (spec and generator unchanged, checksums verified)")
    else:
        directory.parent.mkdir(parents=True, exist_ok=True)
        generate.generate(spec, directory, progress=progress)
        manifest = json.loads((directory / "manifest.json").read_text())
        log(
            f"corpus {spec.name}: generated {manifest['counts']['chunks']} chunks in {directory} "
            f"({manifest['generate_seconds']} s)"
        )
    return Corpus(directory, manifest)
