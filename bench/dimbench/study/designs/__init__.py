"""The designs the study compares: each one a module with the same small interface.

    NAME          its name in the vocabulary (dimbench.vocabulary.DESIGNS)
    INDEX_KINDS   the index kinds whose builds it can ride on
    PARAMS        its grid parameters and their defaults
    install(conn, build, params) -> Installed
                  build its structures for one build (column type, index arguments), timed and sized,
                  and its search function `dimbench_<name>.match_document_chunks` (the signature of
                  public.match_document_chunks, so every access arm calls it the same way)
    remove(conn)  take all of it away again; idempotent; the harmonized schema is left as it was

`shared` is the harmonized schema itself: nothing to install, the study's own index build.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from dimbench.vocabulary import DESIGNS


def module(name: str) -> ModuleType:
    if name not in DESIGNS:
        raise KeyError(name)
    return importlib.import_module(f"dimbench.study.designs.{name}")
