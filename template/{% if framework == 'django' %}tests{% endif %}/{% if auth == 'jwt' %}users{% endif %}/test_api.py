from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.test import Client, override_settings

from ..accounts import register_and_login

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"
ME = "/api/v1/users/me"
JSON = "application/json"


def test_register_returns_the_user_without_secrets(client: Client) -> None:
    response = client.post(
        REGISTER,
        {"email": "Ada@Example.com", "password": "analytical engine", "full_name": "Ada"},
        content_type=JSON,
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "full_name", "is_active", "created_at"}
    assert body["email"] == "ada@example.com"
    assert body["full_name"] == "Ada"
    assert body["is_active"] is True
    assert b"analytical" not in response.content


def test_register_twice_is_409_whatever_the_case(client: Client) -> None:
    payload = {"email": "ada@example.com", "password": "analytical engine"}
    assert client.post(REGISTER, payload, content_type=JSON).status_code == 201
    payload["email"] = "ADA@example.com"
    response = client.post(REGISTER, payload, content_type=JSON)
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Conflict"


def test_register_accepts_addresses_at_test_domains(client: Client) -> None:
    # RFC 6761 reserves .test for testing; the OpenAPI `email` format allows it too.
    payload = {"email": "Ada@Lab.Example.TEST", "password": "long enough"}
    response = client.post(REGISTER, payload, content_type=JSON)
    assert response.status_code == 201
    assert response.json()["email"] == "ada@lab.example.test"


def test_register_validates_email_and_password(client: Client) -> None:
    for payload in [
        {"email": "not-an-email", "password": "long enough"},
        {"email": "a@localhost", "password": "long enough"},
        {"email": "a@example.com", "password": "short"},
        {"email": "a@example.com", "password": "x" * 129},
        {"email": "a@example.com", "password": "long enough", "is_active": False},
    ]:
        response = client.post(REGISTER, payload, content_type=JSON)
        assert response.status_code == 422, payload
        assert response.json()["errors"], payload


def test_token_and_me(client: Client) -> None:
    headers = register_and_login(client, "grace@example.com")
    response = client.get(ME, headers=headers)
    assert response.status_code == 200
    assert response.json()["email"] == "grace@example.com"


def test_token_response_shape(client: Client) -> None:
    client.post(REGISTER, {"email": "g@example.com", "password": "long enough"}, content_type=JSON)
    response = client.post(TOKEN, {"username": "g@example.com", "password": "long enough"})
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    assert isinstance(body["access_token"], str)


def test_wrong_password_and_unknown_user_are_the_same_401(client: Client) -> None:
    client.post(REGISTER, {"email": "g@example.com", "password": "long enough"}, content_type=JSON)
    wrong = client.post(TOKEN, {"username": "g@example.com", "password": "nope nope"})
    unknown = client.post(TOKEN, {"username": "x@example.com", "password": "nope nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong["WWW-Authenticate"] == "Bearer"


def test_a_form_that_cannot_be_parsed_is_a_400_problem(client: Client) -> None:
    # multipart/form-data without the boundary that separates its parts
    response = client.post(TOKEN, "username=a&password=b", content_type="multipart/form-data")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_me_refuses_missing_forged_and_expired_tokens(client: Client) -> None:
    register_and_login(client, "g@example.com")
    forged = jwt.encode({"sub": "1", "iat": 0, "exp": 9_999_999_999}, "wrong-key" * 4)
    expired = jwt.encode(
        {"sub": "1", "iat": 0, "exp": 1, "type": "access"}, settings.SECRET_KEY, algorithm="HS256"
    )
    unsigned = jwt.encode({"sub": "1", "iat": 0, "exp": 9_999_999_999}, None, algorithm="none")
    for headers in [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {unsigned}"},
    ]:
        response = client.get(ME, headers=headers)
        assert response.status_code == 401, headers
        assert response["Content-Type"] == "application/problem+json"


def test_token_expiry_follows_settings(client: Client) -> None:
    with override_settings(ACCESS_TOKEN_EXPIRE_MINUTES=5):
        headers = register_and_login(client, "g@example.com")
    token = headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, settings.SECRET_KEY, algorithms=["HS256"])
    assert timedelta(seconds=claims["exp"] - claims["iat"]) == timedelta(minutes=5)


def test_login_is_rate_limited_per_client_address(client: Client) -> None:
    client.post(REGISTER, {"email": "g@example.com", "password": "long enough"}, content_type=JSON)
    for _ in range(10):
        response = client.post(TOKEN, {"username": "g@example.com", "password": "bad"})
        assert response.status_code == 401
    response = client.post(TOKEN, {"username": "g@example.com", "password": "long enough"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"] == "application/problem+json"
    # The account owner, from another address, is not locked out by those failures.
    response = client.post(
        TOKEN, {"username": "g@example.com", "password": "long enough"}, REMOTE_ADDR="192.0.2.10"
    )
    assert response.status_code == 200, response.content
