"""Structured logs: readable in development, one JSON object per line in production."""

import logging.config
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from django.http import HttpRequest, HttpResponseBase

SHARED_PROCESSORS: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def logging_config(*, json: bool, level: str) -> dict[str, Any]:
    """The `LOGGING` setting: every record, ours and Django's, through one structlog renderer."""
    renderer: structlog.typing.Processor
    pre_chain: list[structlog.typing.Processor]
    if json:
        renderer = structlog.processors.JSONRenderer()
        pre_chain = [*SHARED_PROCESSORS, structlog.processors.dict_tracebacks]
    else:
        renderer = structlog.dev.ConsoleRenderer()
        pre_chain = SHARED_PROCESSORS
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": pre_chain,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    renderer,
                ],
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structlog"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django": {"handlers": [], "level": level, "propagate": True},
            # RequestLoggingMiddleware logs each request once, with its duration and request id.
            "django.server": {"handlers": [], "propagate": False},
        },
    }


def configure_logging(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG callable: structlog first, then the standard library."""
    structlog.configure(
        processors=[*SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(config)


class RequestLoggingMiddleware:
    """Logs one line per request and tags every log line with the request id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.logger = structlog.get_logger("http")

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = _incoming_request_id(request) or uuid.uuid4().hex
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            self.logger.info(
                "request",
                method=request.method,
                path=request.path,
                status=response.status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
        return response


def _incoming_request_id(request: HttpRequest) -> str | None:
    candidate = request.headers.get("X-Request-ID")
    # Accept only short, printable ids, so a client cannot inject into the logs.
    if candidate and len(candidate) <= 128 and candidate.isprintable() and " " not in candidate:
        return candidate
    return None
