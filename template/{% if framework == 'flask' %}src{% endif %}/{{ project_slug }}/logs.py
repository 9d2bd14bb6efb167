"""Structured logs: readable in development, one JSON object per line in production."""

import logging
import time
import uuid

import structlog
from flask import Flask, Response, g, request

from .settings import Settings

REQUEST_ID_HEADER = "X-Request-ID"


def configure_logging(settings: Settings) -> None:
    shared_processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor
    if settings.environment == "production":
        shared_processors.append(structlog.processors.dict_tracebacks)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer()

    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # Route the standard library's records (Werkzeug, SQLAlchemy, Alembic) through the same
    # renderer.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)


def install_request_logging(app: Flask) -> None:
    """Log one line per request and tag every log line of the request with its id."""
    logger = structlog.get_logger("http")

    @app.before_request
    def _start() -> None:
        g.request_id = _incoming_request_id() or uuid.uuid4().hex
        g.request_started = time.perf_counter()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id: str = g.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        started: float = g.get("request_started", time.perf_counter())
        logger.info(
            "request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response

    @app.teardown_request
    def _forget(_error: BaseException | None) -> None:
        structlog.contextvars.unbind_contextvars("request_id")


def _incoming_request_id() -> str | None:
    candidate = request.headers.get(REQUEST_ID_HEADER)
    # Accept only short, printable ids, so a client cannot inject into the logs.
    if candidate and len(candidate) <= 128 and candidate.isprintable() and " " not in candidate:
        return candidate
    return None
