"""sensitivity.json read back (written by study/sensitivity.py beside run.json): None when absent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dimbench.errors import DimbenchError

FILE = "sensitivity.json"


def read_sensitivity(directory: Path) -> dict[str, Any] | None:
    path = Path(directory) / FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DimbenchError(f"{path}: unreadable ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict) or data.get("format") != 1 or not isinstance(data.get("series"), dict):
        raise DimbenchError(f"{path}: not a sensitivity.json of format 1 with a 'series' table")
    return data
