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
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


async def test_ready_is_503_naming_the_database_when_it_is_unreachable(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # Point the app at a database file inside a directory that does not exist.
    broken = app.state.engine.sync_engine.url.set(database="/nonexistent-dir/db.sqlite")
    await app.state.engine.dispose()
    app.state.engine = create_async_engine(broken)
    try:
        response = await client.get("/health/ready")
    finally:
        await app.state.engine.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503
    assert body["checks"] == {"database": "error"}
    assert "database" in body["detail"]
