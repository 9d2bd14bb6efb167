"""Liveness and readiness probes."""

from collections.abc import Callable
from http import HTTPStatus
from typing import Literal

import structlog
from django.db import connections
from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema

from .problems import Problem, problem_response

logger = structlog.get_logger(__name__)
router = Router(tags=["health"])

CheckStatus = Literal["ok", "error"]


class Liveness(Schema):
    status: Literal["ok"] = "ok"


class Readiness(Schema):
    status: Literal["ok"] = "ok"
    checks: dict[str, CheckStatus]


def check_database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def _run_check(name: str, check: Callable[[], None]) -> CheckStatus:
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the log says why
        logger.warning("health.check_failed", check=name, error=repr(exc))
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
