"""The chat messages of a prompt recorded by another tool, for the cases of an imported run.

lm-eval (chat-templated API requests) and promptfoo (chat-format prompts) record a chat prompt as the JSON text of
its message list; other prompts are plain text. Either becomes the messages a harness case holds.
"""

from __future__ import annotations

import json
from typing import Any

ROLES = ("system", "user", "assistant")


def chat_messages(value: Any) -> list[dict[str, str]] | None:
    """The messages of `value` when it is a chat: a list of {role, content} (roles system, user or assistant,
    content text, at least one user message), or the JSON text of such a list; None otherwise."""
    if isinstance(value, str):
        if not value.lstrip().startswith("["):
            return None
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, list) or not value:
        return None
    out = []
    for m in value:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            return None
        out.append({"role": str(m["role"]), "content": str(m["content"])})
    return out if any(m["role"] == "user" for m in out) else None


def prompt_messages(text: str) -> list[dict[str, str]]:
    """A recorded prompt as messages: the chat it holds, or else one user message with the text as given."""
    return chat_messages(text) or [{"role": "user", "content": text}]
