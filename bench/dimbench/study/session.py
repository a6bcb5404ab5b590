"""The run being measured: its run.json, rewritten after every unit of work (atomically), and the seconds
spent per phase."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dimbench.study import runs


@dataclass
class Phases:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)


@dataclass
class Session:
    """run.json of the run being measured. A resumed run adds this session's phase seconds to those the
    interrupted one recorded (`base_phases`)."""

    out: Path
    profile: str
    info: dict[str, Any]
    phases: Phases = field(default_factory=Phases)
    base_phases: dict[str, float] = field(default_factory=dict)
    progress: bool = False  # progress bars on a terminal

    @property
    def run_id(self) -> str:
        return str(self.info["run_id"])

    def save(self) -> None:
        merged = dict(self.base_phases)
        for name, seconds in self.phases.seconds.items():
            merged[name] = round(merged.get(name, 0.0) + seconds, 3)
        self.info["phases"] = merged
        runs.write_runs(self.out, self.profile, [self.info])

    def record_build(self, built: Any) -> None:
        """An index build of this run (one entry per build key: the last one)."""
        entry = asdict(built)
        self.info["builds"] = [b for b in self.info["builds"] if b.get("build_key") != entry["build_key"]] + [
            entry
        ]

    def record_design(self, build_key: str, installed: Any, detail: dict[str, Any]) -> None:
        """A design installed for a build (one entry per design and build key: the last one)."""
        entry = {**asdict(installed), "detail": detail, "build_key": build_key}
        self.info["designs"] = [
            d
            for d in self.info.get("designs", [])
            if (d.get("design"), d.get("build_key")) != (entry["design"], entry["build_key"])
        ] + [entry]

    def design_detail(self, design: str, build_key: str) -> dict[str, Any]:
        """What screening recorded for a design on a build (its measured values)."""
        for d in self.info.get("designs", []):
            if (d.get("design"), d.get("build_key")) == (design, build_key):
                return d.get("detail") or {}
        return {}
