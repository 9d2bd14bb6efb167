"""Liveness and readiness probes."""

import queue
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Literal

import structlog
from apiflask import APIBlueprint
from flask import Response, current_app
from pydantic import BaseModel
from sqlalchemy import text

from .database import db
from .problems import problem_response

# A check that takes longer has failed: a server that stops answering must not hold the probe.
CHECK_TIMEOUT_SECONDS = 3.0

logger = structlog.get_logger(__name__)
bp = APIBlueprint("health", __name__, url_prefix="/health", tag="health")

CheckStatus = Literal["ok", "error"]


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok"] = "ok"
    checks: dict[str, CheckStatus]


def check_database() -> None:
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _run_check(name: str, check: Callable[[], None]) -> CheckStatus:
    """Run a check in a thread of its own and wait CHECK_TIMEOUT_SECONDS at most. A driver has no
    time limit on a query: it waits for a server that stopped answering as long as the connection
    lives (minutes, or for ever). The thread ends when the driver gives up; the probe does not."""
    # The thread gets the app itself (the proxy is bound to this request's thread).
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    outcome: queue.SimpleQueue[Exception | None] = queue.SimpleQueue()

    def run() -> None:
        with app.app_context():
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


@bp.get("/live")
@bp.output(Liveness)
def live() -> Liveness:
    return Liveness()


@bp.get("/ready")
@bp.output(Readiness)
@bp.doc(responses={503: "Service Unavailable"})
def ready() -> Readiness | Response:
    checks = {"database": _run_check("database", check_database)}
    failing = sorted(name for name, status in checks.items() if status != "ok")
    if failing:
        return problem_response(
            HTTPStatus.SERVICE_UNAVAILABLE,
            f"Failing checks: {', '.join(failing)}.",
            extra={"checks": checks},
        )
    return Readiness(checks=checks)
