"""The LOGGING setting, built from the environment, and LOGGING_CONFIG, which applies it.

``LOG_FORMAT``: ``plain`` (default; one human line per record) or ``json`` (one JSON object per line
with ``time``, ``level``, ``logger``, ``message``, and ``payment_id`` / ``activation_id`` when the line
concerns one, see project.log_context). ``LOG_LEVEL``: the root level (default INFO).

Levels follow API.md "Operability": client mistakes are INFO/WARNING without a traceback, an expected
retry is one WARNING line naming the attempt and the reason, ERROR is for what a person must act on.
"""

from __future__ import annotations

import logging
import logging.config
import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

LOG_FORMATS = ("plain", "json")

# Huey's line for a job that raised CancelExecution(retry=True): our jobs do that only for expected
# failures, after writing their own WARNING with the attempt and the reason (network.tasks,
# billing.tasks), so Huey's line would only repeat it.
_HUEY_RETRY_MESSAGE = "Task %s raised CancelExecution %s."
_HUEY_RETRY_NOTE = "(task will be retried)"


class ExpectedRetryFilter(logging.Filter):
    """Turns Huey's "raised CancelExecution (task will be retried)" WARNING into a DEBUG line."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg == _HUEY_RETRY_MESSAGE and _HUEY_RETRY_NOTE in args:
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


class ClientMistakeFilter(logging.Filter):
    """Django logs a 4xx it made from an exception (PermissionDenied, an unparsable body) with the
    traceback, and a SuspiciousOperation (a scanner's Host header, an oversized upload) at ERROR:
    each is a client's mistake, so one WARNING line without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        from_django = record.name == "django.request" or record.name.startswith("django.security.")
        if from_django and isinstance(status, int) and status < 500:
            record.exc_info, record.exc_text = None, None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


def _formatter(log_format: str) -> dict[str, Any]:
    if log_format == "json":
        return {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601 in UTC, whatever the machine's time zone
            "json_ensure_ascii": False,
        }
    return {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}


def build(environ: Mapping[str, str]) -> dict[str, Any]:
    """The dictConfig for these environment variables (settings.py: ``LOGGING = build(os.environ)``)."""
    log_format = environ.get("LOG_FORMAT", "plain").strip().lower() or "plain"
    if log_format not in LOG_FORMATS:
        raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"console": _formatter(log_format)},
        "filters": {
            "log_context": {"()": "project.log_context.LogContextFilter"},
            "client_mistakes": {"()": "project.logging_config.ClientMistakeFilter"},
            "expected_retries": {"()": "project.logging_config.ExpectedRetryFilter"},
        },
        "handlers": {
            # `manage.py run_huey` adds a handler of its own, in its own format, to a "huey" logger
            # that has none; this one keeps it from doing so (records still reach "console").
            "quiet": {"class": "logging.NullHandler"},
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "console",
                "filters": ["log_context", "client_mistakes"],
            },
        },
        "root": {"handlers": ["console"], "level": environ.get("LOG_LEVEL", "INFO")},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "huey": {"handlers": ["quiet"], "filters": ["expected_retries"]},
        },
    }


def configure(config: dict[str, Any]) -> None:
    """LOGGING_CONFIG: every line a process writes goes through logging, in one format."""
    logging.config.dictConfig(config)
    # Python's warnings (a deprecation, a missing static directory) as lines of the py.warnings logger.
    logging.captureWarnings(True)
    _route_daphne_access_log()


# Query parameters that prove ownership (a checkout return page's client_secret and its signature, a
# signed link's token): whoever reads the access log must not be able to open those pages.
_SECRET_QUERY_VALUE = re.compile(r"(?i)([?&](?:client_secret|signature|token)=)[^&\s\"]*")


def redact_query(request_line: str) -> str:
    """`GET /payment/success/<id>/?client_secret=abc HTTP/1.1` → `...?client_secret=[redacted] ...`."""
    return _SECRET_QUERY_VALUE.sub(r"\1[redacted]", request_line)


def _route_daphne_access_log() -> None:
    """daphne writes its access log (on by default) straight to stdout in its own format; through
    the ``daphne.access`` logger (INFO) it follows LOG_FORMAT like every other line. daphne builds
    its access logger after importing the application, so this is in place in time."""
    from daphne.access import AccessLogGenerator

    access_logger = logging.getLogger("daphne.access")

    def write_entry(
        self: AccessLogGenerator,
        host: str,
        date: object,
        request: str,
        status: int | None = None,
        length: int | None = None,
        ident: str | None = None,
        user: str | None = None,
    ) -> None:
        access_logger.info('%s "%s" %s %s', host, redact_query(request), status or "-", length or "-")

    AccessLogGenerator.write_entry = write_entry  # type: ignore[method-assign]
