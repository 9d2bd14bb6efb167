"""Liveness and readiness probes."""

from collections.abc import Callable
from http import HTTPStatus
from typing import Literal

import structlog
from apiflask import APIBlueprint
from flask import Response
from pydantic import BaseModel
from sqlalchemy import text

from .database import db
from .problems import problem_response

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
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the log says why
        logger.warning("health.check_failed", check=name, error=repr(exc))
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
