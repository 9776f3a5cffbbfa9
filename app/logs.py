"""How the process logs: readable lines, or one JSON object per line for a log shipper
(`logging.format: json`), with a request's id, principal, route, status and duration."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from app.config import LoggingSettings

# What a record may carry beside its message (`extra=`): the access log's fields.
FIELDS = ("request_id", "principal", "method", "route", "path", "status", "duration_ms",
          "bytes", "client")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds"),
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        line.update({key: getattr(record, key) for key in FIELDS if hasattr(record, key)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(settings: LoggingSettings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=settings.level, handlers=[handler], force=True)
