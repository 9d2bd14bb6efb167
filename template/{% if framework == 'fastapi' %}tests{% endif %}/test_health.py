import asyncio
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


async def test_ready_is_503_while_the_database_does_not_answer(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    answering, gave_up = asyncio.Event(), asyncio.Event()

    async def wait_for_the_server() -> NoReturn:
        # A server that accepted the connection and says nothing; cancelled, the driver takes
        # its time to drop the connection (asyncpg waits up to 2 s for the server).
        try:
            await answering.wait()
        finally:
            try:
                await asyncio.wait_for(answering.wait(), timeout=15)
            except TimeoutError:
                gave_up.set()
        raise ConnectionRefusedError("the database never answered")

    healthy_engine = app.state.engine
    app.state.engine = create_async_engine(healthy_engine.url, async_creator=wait_for_the_server)
    try:
        response = await client.get("/health/ready")
        answered_first = not gave_up.is_set()
    finally:
        answering.set()
        await app.state.engine.dispose()
        app.state.engine = healthy_engine
    # Readiness answered on its own time, while the database still said nothing.
    assert answered_first
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "error"
