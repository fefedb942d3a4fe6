"""How the long-running process logs: one line per event, naming the edition and batch it
is about; times in the organisation's zone for people (``text``), or one JSON object a
line for machines (``json``)."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

LogFormat = Literal["text", "json"]
# Most lines say "edition 2026-W48: ..." or "alert alert-…: ..."; the batch lines carry
# both as extra fields, and the others are read from the words.
_EDITION = re.compile(r"\b(?:edition|alert) ([A-Za-z0-9][A-Za-z0-9_.-]*?)[:,]?(?=\s|$)")
_BATCH = re.compile(r"\bbatch (\d+)\b")


def _about(record: logging.LogRecord, message: str) -> dict[str, Any]:
    edition = getattr(record, "edition", None)
    batch = getattr(record, "batch", None)
    if edition is None and (found := _EDITION.search(message)):
        edition = found[1]
    if batch is None and (found := _BATCH.search(message)):
        batch = int(found[1])
    return {k: v for k, v in (("edition", edition), ("batch", batch)) if v is not None}


class LocalTimeFormatter(logging.Formatter):
    """``2026-11-26 07:00:02 EST INFO digest.dispatch.run: edition 2026-W48 batch 3 …``"""

    def __init__(self, zone: ZoneInfo) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.zone = zone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, self.zone).strftime("%Y-%m-%d %H:%M:%S %Z")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC and the organisation's), level, logger, message,
    and the edition and batch when the line is about one."""

    def __init__(self, zone: ZoneInfo) -> None:
        super().__init__()
        self.zone = zone

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        at = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": at.isoformat(timespec="milliseconds"),
            "local_time": at.astimezone(self.zone).isoformat(timespec="seconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        } | _about(record, message)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(fmt: LogFormat, zone: ZoneInfo, *, debug: bool = False) -> None:
    """Every log line of this process to standard error, in ``fmt``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(zone) if fmt == "json" else LocalTimeFormatter(zone))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, handlers=[handler], force=True
    )
    # uvicorn's own loggers go through ours, so a machine reads one format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
