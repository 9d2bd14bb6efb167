"""Liveness and readiness probes."""

import asyncio
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Literal

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .problems import problem_response, problem_responses

CHECK_TIMEOUT_SECONDS = 3.0

logger = structlog.get_logger(__name__)
router = APIRouter(prefix="/health", tags=["health"])

CheckStatus = Literal["ok", "error"]


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok"] = "ok"
    checks: dict[str, CheckStatus]


async def check_database(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _run_check(name: str, check: Callable[[], Awaitable[None]]) -> CheckStatus:
    try:
        await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the log says why
        logger.warning("health.check_failed", check=name, error=repr(exc))
        return "error"
    return "ok"


@router.get("/live")
async def live() -> Liveness:
    return Liveness()


@router.get("/ready", response_model=Readiness, responses=problem_responses(503))
async def ready(request: Request) -> Readiness | JSONResponse:
    engine: AsyncEngine = request.app.state.engine
    checks = {"database": await _run_check("database", lambda: check_database(engine))}
    failing = sorted(name for name, status in checks.items() if status != "ok")
    if failing:
        return problem_response(
            request,
            HTTPStatus.SERVICE_UNAVAILABLE,
            f"Failing checks: {', '.join(failing)}.",
            extra={"checks": checks},
        )
    return Readiness(checks=checks)
