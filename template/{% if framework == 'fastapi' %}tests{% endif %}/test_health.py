from typing import NoReturn

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine


async def test_live(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_reports_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    # The other dependencies of the project, if any, are checked too.
    assert body["checks"]["database"] == "ok"


async def refuse_connection() -> NoReturn:
    raise ConnectionRefusedError("the database is down")


async def test_ready_is_503_naming_the_database_when_it_is_unreachable(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    healthy_engine = app.state.engine
    app.state.engine = create_async_engine(healthy_engine.url, async_creator=refuse_connection)
    try:
        response = await client.get("/health/ready")
    finally:
        await app.state.engine.dispose()
        app.state.engine = healthy_engine
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503
    assert body["checks"]["database"] == "error"
    assert "database" in body["detail"]

    # Readiness recovers by itself once the database answers again.
    response = await client.get("/health/ready")
    assert response.status_code == 200
