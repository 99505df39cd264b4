"""Checks shared by every reader: the input path is a readable file; JSON parses."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from linegraph2road.errors import FormatError, InputFileError

__all__ = ["check_input_file", "read_json"]


def check_input_file(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a Path, or raise InputFileError when it is not a readable file."""
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: no such file")
    if p.is_dir():
        raise InputFileError(f"{p}: is a directory, expected a graph file")
    if not os.access(p, os.R_OK):
        raise InputFileError(f"{p}: file is not readable (permission denied)")
    return p


def read_json(path: str | os.PathLike[str], *, what: str) -> Any:
    """Parse a JSON file; ``what`` names the expected content in the error ("GeoJSON").

    Raises
    ------
    InputFileError
        Missing, a directory or unreadable.
    FormatError
        Not UTF-8 text or not valid JSON: ``"x.json: not {what} (invalid JSON: ...)"``.
    """
    p = check_input_file(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputFileError(f"{p}: cannot read file ({exc.strerror})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{p}: not {what} (invalid JSON: {exc})") from exc
