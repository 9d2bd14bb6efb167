"""Every error is an RFC 9457 problem details document."""

import httpx
import pytest
from fastapi import FastAPI


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "instance": "/no-such-page",
    }


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.put("/health/live")
    assert response.status_code == 405
    assert response.json()["title"] == "Method Not Allowed"


async def test_unexpected_error_is_a_500_problem_without_internals(app: FastAPI) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    # The error does not escape the app (the server would log it a second time), and the 500
    # passes through every middleware, like any other answer.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "boom-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    body = response.json()
    assert body["status"] == 500
    assert "secret internal detail" not in response.text


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=101", "limit"), ("offset=-1", "offset"), ("limit=x", "limit")],
)
async def test_bad_paging_is_a_422_problem_naming_the_field(
    client: httpx.AsyncClient, auth_headers: dict[str, str], query: str, field: str
) -> None:
    response = await client.get(f"/api/v1/items?{query}", headers=auth_headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [(error["location"], error["field"]) for error in errors] == [("query", field)]
