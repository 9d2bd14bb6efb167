"""Every error is an RFC 9457 problem details document."""

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient


def test_unknown_route_is_a_404_problem(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.get_json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "instance": "/no-such-page",
    }


def test_wrong_method_is_a_405_problem(client: FlaskClient) -> None:
    response = client.put("/health/live")
    assert response.status_code == 405
    assert response.get_json()["title"] == "Method Not Allowed"


def test_unexpected_error_is_a_500_problem_without_internals(app: APIFlask) -> None:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internal detail")

    response = app.test_client().get("/boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    # Like any other answer: the request id and the security headers.
    assert response.headers["x-request-id"] == "boom-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    body = response.get_json()
    assert body["status"] == 500
    assert "secret internal detail" not in response.text


def test_malformed_json_is_a_422_problem(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/items",
        data=b'{"name": ',
        headers={**auth_headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.get_json()["errors"] == [
        {"location": "body", "field": "", "detail": "The body is not valid JSON."}
    ]


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/v1/items"), ("PATCH", "/api/v1/items/1")]
)
@pytest.mark.parametrize("body", [b"\xff\xfe\xfa", b'{"name": "caf\xe9"}'])
def test_a_body_that_is_not_text_is_a_400_problem(
    client: FlaskClient, auth_headers: dict[str, str], method: str, path: str, body: bytes
) -> None:
    """Bytes that are not UTF-8 are no JSON text at all: 400, before any field is looked at."""
    response = client.open(
        path,
        method=method,
        data=body,
        headers={**auth_headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.get_json() == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "The body is not UTF-8 text.",
        "instance": path,
    }


def test_responses_carry_a_request_id(client: FlaskClient) -> None:
    assert client.get("/health/live").headers["X-Request-ID"]
    echoed = client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    injected = client.get("/health/live", headers={"X-Request-ID": "two words"})
    assert injected.headers["X-Request-ID"] != "two words"


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=101", "limit"), ("offset=-1", "offset"), ("limit=x", "limit")],
)
def test_bad_paging_is_a_422_problem_naming_the_field(
    client: FlaskClient, auth_headers: dict[str, str], query: str, field: str
) -> None:
    response = client.get(f"/api/v1/items?{query}", headers=auth_headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.get_json()["errors"]
    assert [(error["location"], error["field"]) for error in errors] == [("query", field)]
