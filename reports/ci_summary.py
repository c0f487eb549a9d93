"""Append Markdown to the GitHub Actions job summary: the file named by $GITHUB_STEP_SUMMARY, when it is set.

GitHub renders what a step appends to that file on the run's summary page, and refuses a step's summary over
1 MiB; the text appended here is cut to stay under that limit. Nothing is printed: the Markdown may hold model
and endpoint text, and the file is the only place it goes. As a second guard (the store never holds a key), the
values of environment variables named like secrets (`*_API_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD`) are
replaced by `***` before writing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ENV = "GITHUB_STEP_SUMMARY"
STEP_LIMIT = 1024 * 1024  # bytes GitHub accepts in one step's summary
_SECRET_NAME = re.compile(r"(API_KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_CUT_NOTE = "\n\n_(summary cut: GitHub accepts at most 1 MiB per step; see the uploaded report)_\n"


def _masked(markdown: str) -> str:
    for name, value in os.environ.items():
        if _SECRET_NAME.search(name) and len(value) >= 8:
            markdown = markdown.replace(value, "***")
    return markdown


def _fitted(markdown: str, room: int) -> str:
    data = markdown.encode("utf-8")
    if len(data) <= room:
        return markdown
    keep = room - len(_CUT_NOTE.encode("utf-8"))
    if keep <= 0:
        return ""
    return data[:keep].decode("utf-8", errors="ignore") + _CUT_NOTE


def append_step_summary(markdown: str) -> Path | None:
    """Append `markdown` (and a newline) to $GITHUB_STEP_SUMMARY; return its path, or None when it is not set."""
    name = os.environ.get(ENV, "").strip()
    if not name:
        return None
    path = Path(name)
    used = path.stat().st_size if path.is_file() else 0
    text = _fitted(_masked(markdown if markdown.endswith("\n") else markdown + "\n"), STEP_LIMIT - used)
    with path.open("a", encoding="utf-8") as f:
        f.write(text)
    return path
