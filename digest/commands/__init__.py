"""What each command prints: the CLI's presentation, over the library's service functions."""

from digest.commands.audience import export_command, import_command, lists_command, show_command
from digest.commands.content import build_command, collect_command
from digest.commands.editions import (
    approve_command,
    editions_command,
    reject_command,
    serve_command,
    status_command,
)
from digest.commands.sending import alert_command, cancel_command, send_command

__all__ = [
    "alert_command",
    "approve_command",
    "build_command",
    "cancel_command",
    "collect_command",
    "editions_command",
    "export_command",
    "import_command",
    "lists_command",
    "reject_command",
    "send_command",
    "serve_command",
    "show_command",
    "status_command",
]
