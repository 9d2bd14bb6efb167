from datetime import timedelta

import httpx
import jwt
from fastapi import FastAPI

from ..accounts import register_and_login

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"
ME = "/api/v1/users/me"


async def test_register_returns_the_user_without_secrets(client: httpx.AsyncClient) -> None:
    response = await client.post(
        REGISTER,
        json={"email": "Ada@Example.com", "password": "analytical engine", "full_name": "Ada"},
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "full_name", "is_active", "created_at"}
    assert body["email"] == "ada@example.com"
    assert body["full_name"] == "Ada"
    assert body["is_active"] is True
    assert "analytical" not in response.text


async def test_register_twice_is_409_whatever_the_case(client: httpx.AsyncClient) -> None:
    payload = {"email": "ada@example.com", "password": "analytical engine"}
    assert (await client.post(REGISTER, json=payload)).status_code == 201
    payload["email"] = "ADA@example.com"
    response = await client.post(REGISTER, json=payload)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Conflict"


async def test_register_accepts_addresses_at_test_domains(client: httpx.AsyncClient) -> None:
    # RFC 6761 reserves .test for testing; the OpenAPI `email` format allows it too.
    payload = {"email": "Ada@Lab.Example.TEST", "password": "long enough"}
    response = await client.post(REGISTER, json=payload)
    assert response.status_code == 201
    assert response.json()["email"] == "ada@lab.example.test"


async def test_register_validates_email_and_password(client: httpx.AsyncClient) -> None:
    for payload in [
        {"email": "not-an-email", "password": "long enough"},
        {"email": "a@localhost", "password": "long enough"},
        {"email": "a@example.com", "password": "short"},
        {"email": "a@example.com", "password": "x" * 129},
        {"email": "a@example.com", "password": "long enough", "is_active": False},
    ]:
        response = await client.post(REGISTER, json=payload)
        assert response.status_code == 422, payload
        assert response.json()["errors"], payload


async def test_token_and_me(client: httpx.AsyncClient) -> None:
    headers = await register_and_login(client, "grace@example.com")
    response = await client.get(ME, headers=headers)
    assert response.status_code == 200
    assert response.json()["email"] == "grace@example.com"


async def test_token_response_shape(client: httpx.AsyncClient) -> None:
    await client.post(REGISTER, json={"email": "g@example.com", "password": "long enough"})
    response = await client.post(
        TOKEN, data={"username": "g@example.com", "password": "long enough"}
    )
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    assert isinstance(body["access_token"], str)


async def test_wrong_password_and_unknown_user_are_the_same_401(client: httpx.AsyncClient) -> None:
    await client.post(REGISTER, json={"email": "g@example.com", "password": "long enough"})
    wrong = await client.post(TOKEN, data={"username": "g@example.com", "password": "nope nope"})
    unknown = await client.post(TOKEN, data={"username": "x@example.com", "password": "nope nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.headers["www-authenticate"] == "Bearer"


async def test_me_refuses_missing_forged_and_expired_tokens(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register_and_login(client, "g@example.com")
    settings = app.state.settings
    forged = jwt.encode({"sub": "1", "iat": 0, "exp": 9_999_999_999}, "wrong-key" * 4)
    expired = jwt.encode(
        {"sub": "1", "iat": 0, "exp": 1, "type": "access"}, settings.signing_key, algorithm="HS256"
    )
    unsigned = jwt.encode({"sub": "1", "iat": 0, "exp": 9_999_999_999}, None, algorithm="none")
    for headers in [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {unsigned}"},
    ]:
        response = await client.get(ME, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == "application/problem+json"


async def test_token_expiry_follows_settings(app: FastAPI, client: httpx.AsyncClient) -> None:
    app.state.settings.access_token_expire_minutes = 5
    headers = await register_and_login(client, "g@example.com")
    token = headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, app.state.settings.signing_key, algorithms=["HS256"])
    assert timedelta(seconds=claims["exp"] - claims["iat"]) == timedelta(minutes=5)


async def test_login_is_rate_limited_per_client_address(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.post(REGISTER, json={"email": "g@example.com", "password": "long enough"})
    for _ in range(10):
        response = await client.post(TOKEN, data={"username": "g@example.com", "password": "bad"})
        assert response.status_code == 401
    response = await client.post(
        TOKEN, data={"username": "g@example.com", "password": "long enough"}
    )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["content-type"] == "application/problem+json"
    # The account owner, from another address, is not locked out by those failures.
    transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as owner:
        response = await owner.post(
            TOKEN, data={"username": "g@example.com", "password": "long enough"}
        )
    assert response.status_code == 200, response.text
