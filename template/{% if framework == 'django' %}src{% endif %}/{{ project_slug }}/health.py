"""Liveness and readiness probes."""

import queue
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Literal

import structlog
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema

from .problems import Problem, problem_response

# A check that takes longer has failed: a server that stops answering must not hold the probe.
CHECK_TIMEOUT_SECONDS = 3.0

logger = structlog.get_logger(__name__)
router = Router(tags=["health"])

CheckStatus = Literal["ok", "error"]


class Liveness(Schema):
    status: Literal["ok"] = "ok"


class Readiness(Schema):
    status: Literal["ok"] = "ok"
    checks: dict[str, CheckStatus]


def check_database() -> None:
    """SELECT 1 on a new connection of the check's own, closed after: a kept connection may be
    the one that hangs, and the check runs in a thread of its own."""
    connection = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        if connection.connection is not None:
            # The driver's close: Django's keeps an in-memory SQLite database open.
            connection.connection.close()


def _run_check(name: str, check: Callable[[], None]) -> CheckStatus:
    """Run a check in a thread of its own and wait CHECK_TIMEOUT_SECONDS at most. A driver has no
    time limit on a query: it waits for a server that stopped answering as long as the connection
    lives (minutes, or for ever). The thread ends when the driver gives up; the probe does not."""
    outcome: queue.SimpleQueue[Exception | None] = queue.SimpleQueue()

    def run() -> None:
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            outcome.put(exc)
        else:
            outcome.put(None)

    threading.Thread(target=run, name=f"health-check-{name}", daemon=True).start()
    try:
        error = outcome.get(timeout=CHECK_TIMEOUT_SECONDS)
    except queue.Empty:
        error = TimeoutError(f"no answer in {CHECK_TIMEOUT_SECONDS:g} s")
    if error is not None:
        logger.warning("health.check_failed", check=name, error=repr(error))
        return "error"
    return "ok"


@router.get("/live", response=Liveness)
def live(request: HttpRequest) -> Liveness:
    return Liveness()


@router.get("/ready", response={200: Readiness, 503: Problem})
def ready(request: HttpRequest) -> Readiness | HttpResponse:
    checks = {"database": _run_check("database", check_database)}
    failing = sorted(name for name, status in checks.items() if status != "ok")
    if failing:
        return problem_response(
            request,
            HTTPStatus.SERVICE_UNAVAILABLE,
            f"Failing checks: {', '.join(failing)}.",
            extra={"checks": checks},
        )
    return Readiness(checks=checks)
