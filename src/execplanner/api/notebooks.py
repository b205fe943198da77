"""A batch notebook's result, as the operator keeps it and the planner serves it: the executed
notebook that a batch pod's log is (jupyter nbconvert --execute --stdout)."""
from __future__ import annotations

import json

NOTEBOOK_MEDIA_TYPE = "application/x-ipynb+json"


def executed_notebook(data: bytes | str) -> str | None:
    """The notebook (JSON with cells) that a batch pod's log is, or None. Whatever a
    misbehaving image printed before its first line "{" is skipped."""
    try:
        text = data.decode() if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        return None
    lines = text.splitlines(keepends=True)
    for start in [0, *(i for i, line in enumerate(lines) if line.rstrip() == "{")]:
        candidate = "".join(lines[start:])
        try:
            parsed = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(parsed, dict) and isinstance(parsed.get("cells"), list):
            return candidate
    return None
