from collections.abc import Callable
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.test import Client

pytestmark = pytest.mark.django_db


def test_live(client: Client) -> None:
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_reports_the_database(client: Client) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


def refuse_queries(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    raise OperationalError("the database is down")


def test_ready_is_503_naming_the_database_when_it_is_unreachable(client: Client) -> None:
    # Django's own hook around every query: here, every query fails as on a database that is down.
    with connection.execute_wrapper(refuse_queries):
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503
    assert body["checks"] == {"database": "error"}
    assert "database" in body["detail"]

    # Readiness recovers by itself once the database answers again.
    response = client.get("/health/ready")
    assert response.status_code == 200
