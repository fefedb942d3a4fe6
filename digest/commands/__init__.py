"""What each command prints: the CLI's presentation, over the library's service functions.

Each command's module is imported when the command is used, not when ``digest`` starts:
`digest status` need not load the renderers and WeasyPrint (seconds a process)."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "alert_command": "sending",
    "approve_command": "editions",
    "build_command": "content",
    "cancel_command": "sending",
    "collect_command": "content",
    "editions_command": "editions",
    "export_command": "audience",
    "import_command": "audience",
    "lists_command": "audience",
    "reject_command": "editions",
    "send_command": "sending",
    "serve_command": "editions",
    "show_command": "audience",
    "status_command": "editions",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'digest.commands' has no attribute {name!r}")
    return getattr(importlib.import_module(f"digest.commands.{_WHERE[name]}"), name)
