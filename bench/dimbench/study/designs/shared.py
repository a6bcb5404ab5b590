"""`shared`: the harmonized schema as migrated, one approximate index over every tenant's chunks.

Nothing to install: its index is the study's own build, and it searches public.match_document_chunks.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dimbench.study.configs import Build
from dimbench.study.designs.base import Design, Installed
from dimbench.vocabulary import DEFAULT_DESIGN, INDEX_KINDS


class Shared(Design):
    NAME = DEFAULT_DESIGN
    INDEX_KINDS = INDEX_KINDS

    def install(self, conn: psycopg.Connection, build: Build, params: dict[str, Any]) -> Installed:
        return Installed(self.NAME, build.column_type, {}, 0.0, index_bytes=0, table_bytes=0)

    def remove(self, conn: psycopg.Connection) -> None:
        """The harmonized schema stays; the study's indexes are index.py's to drop."""


DESIGN = Shared()
