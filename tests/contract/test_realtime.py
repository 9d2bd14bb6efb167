"""Real-time item events at /api/v1/ws (the realtime option), checked black-box against each
generated project's dev server that has them, and against its production server command (the
Dockerfile's CMD) run as two processes that share the database and Redis: a write on one reaches
a subscriber on the other.

Written once for every flavour: it talks HTTP and WebSocket over real sockets and knows nothing
of the code.
"""

from __future__ import annotations

import json
import os
import random
import signal
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from bench import load

from ..conftest import FULL_VARIANTS, GeneratedProject, Live, on_variants
from .test_fuzz import token_headers

REALTIME_VARIANTS = [name for name, answers in FULL_VARIANTS.items() if answers.get("realtime")]
# The variants whose events cross processes (Redis, or PostgreSQL without it), with an image.
SHARED_VARIANTS = [
    name
    for name in REALTIME_VARIANTS
    if (FULL_VARIANTS[name].get("redis") or FULL_VARIANTS[name]["database"] == "postgresql")
    and FULL_VARIANTS[name].get("docker", True)
]
JWT_REALTIME_VARIANTS = [name for name in REALTIME_VARIANTS if FULL_VARIANTS[name]["auth"] == "jwt"]
PATH = "/api/v1/ws"
WAIT_SECONDS = 10
CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_MANY = 4429
# REALTIME_MAX_CONNECTIONS's default with auth=jwt: sockets one user may hold in one process.
DEFAULT_CAP = 5
CLOSE_RESTARTING = 1012


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + PATH


def next_event(socket: ClientConnection) -> dict[str, Any]:
    """The next frame that is not a heartbeat."""
    while True:
        frame: dict[str, Any] = json.loads(socket.recv(timeout=WAIT_SECONDS))
        if frame["type"] != "ping":
            return frame


@contextmanager
def subscribed(base_url: str, headers: dict[str, str]) -> Iterator[ClientConnection]:
    """A socket answered ready: authenticated with the headers' token, if any."""
    with connect(ws_url(base_url), open_timeout=WAIT_SECONDS) as socket:
        if headers:
            token = headers["Authorization"].removeprefix("Bearer ")
            socket.send(json.dumps({"type": "authenticate", "token": token}))
        assert next_event(socket) == {"type": "ready"}
        yield socket


def account(base_url: str, auth: str) -> dict[str, str]:
    """A fresh user's Authorization header (none without auth), registered and logged in from a
    loopback address of its own: registrations and failed logins are counted per address."""
    if auth != "jwt":
        return {}
    source = ".".join(str(random.randint(1, 254)) for _ in range(3))
    return token_headers(base_url, source_address=f"127.{source}")


def check_writes_reach_the_owner(write_url: str, listen_url: str, auth: str) -> None:
    """Create, update and delete an item on one server; a socket on the other hears the three
    events, in order, each item as REST returned it; another user's socket hears none of them."""
    headers = account(write_url, auth)
    other = account(write_url, auth)
    name = f"lamp-{uuid.uuid4().hex[:8]}"
    with (
        subscribed(listen_url, headers) as socket,
        subscribed(listen_url, other) as bystander,
        httpx.Client(base_url=write_url, headers=headers, timeout=WAIT_SECONDS) as client,
    ):
        created = client.post("/api/v1/items", json={"name": name})
        assert created.status_code == 201, created.text
        path = f"/api/v1/items/{created.json()['id']}"
        updated = client.patch(path, json={"description": "on the desk"})
        assert updated.status_code == 200, updated.text
        assert client.delete(path).status_code == 204
        events = [next_event(socket) for _ in range(3)]
        if auth == "jwt":
            # The bystander's next event is its own write: none of the owner's came first.
            own = httpx.post(
                f"{write_url}/api/v1/items", json={"name": "mine"}, headers=other, timeout=10
            )
            assert next_event(bystander)["item"]["id"] == own.json()["id"]
    assert [event["type"] for event in events] == ["item.created", "item.updated", "item.deleted"]
    assert events[0]["item"] == created.json()
    assert events[1]["item"] == updated.json()
    assert events[2]["item"] == {"id": created.json()["id"]}


def close_code(socket: ClientConnection) -> int | None:
    try:
        while True:
            socket.recv(timeout=WAIT_SECONDS)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


@on_variants(REALTIME_VARIANTS)
def test_the_dev_server_sends_each_write_to_its_owner(live: Live) -> None:
    check_writes_reach_the_owner(live.url, live.url, live.project.auth)


@on_variants(REALTIME_VARIANTS)
def test_the_dev_server_refuses_other_sites_and_bad_tokens_and_survives_garbage(
    live: Live,
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(live.url), origin="https://evil.example", open_timeout=WAIT_SECONDS)  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    if live.project.auth == "jwt":
        with connect(ws_url(live.url), open_timeout=WAIT_SECONDS) as socket:
            socket.send(json.dumps({"type": "authenticate", "token": "not.a.token"}))
            assert close_code(socket) == CLOSE_UNAUTHENTICATED
    with subscribed(live.url, account(live.url, live.project.auth)) as socket:
        for garbage in ("{", b"\x00", '{"type": "subscribe"}', "x" * 10_000):
            socket.send(garbage)
            frame = next_event(socket)
            assert frame["type"] == "error", frame
            assert frame["code"] in {"not_json", "not_text", "unknown_type", "too_large"}, frame
        socket.send('{"type": "ping"}')
        assert next_event(socket) == {"type": "pong"}


@on_variants(JWT_REALTIME_VARIANTS)
def test_the_dev_server_caps_the_sockets_of_one_user(live: Live) -> None:
    """REALTIME_MAX_CONNECTIONS (5 by default) sockets for one user in one process; the next is
    closed with 4429, and closing one frees its place. (With auth=none the cap, 1,000 for
    everyone, is checked by each project's own tests with a smaller setting.)"""
    headers = account(live.url, "jwt")
    token = headers["Authorization"].removeprefix("Bearer ")
    with ExitStack() as held:
        sockets = [held.enter_context(subscribed(live.url, headers)) for _ in range(DEFAULT_CAP)]
        with connect(ws_url(live.url), open_timeout=WAIT_SECONDS) as refused:
            refused.send(json.dumps({"type": "authenticate", "token": token}))
            assert close_code(refused) == CLOSE_TOO_MANY
        sockets[0].close()
        with subscribed(live.url, headers):
            pass


@on_variants(REALTIME_VARIANTS)
def test_the_asyncapi_document_is_served_beside_openapi(live: Live) -> None:
    document = httpx.get(f"{live.url}/asyncapi.json", timeout=WAIT_SECONDS).json()
    assert document["asyncapi"] == "3.0.0"
    assert document["channels"]["events"]["address"] == PATH
    messages = document["components"]["messages"]
    for name in ("itemCreated", "itemUpdated", "itemDeleted", "ready", "ping", "pong", "error"):
        assert messages[name]["payload"]["$ref"].startswith("#/components/schemas/"), name
    assert ("authenticate" in messages) == (live.project.auth == "jwt")


@on_variants(SHARED_VARIANTS)
def test_a_write_on_one_production_process_reaches_a_subscriber_on_another(
    generated: GeneratedProject,
) -> None:
    """The Dockerfile's command, twice, one process each, sharing the database and Redis; a
    process told to stop closes its sockets with 1012 at once, so clients reconnect elsewhere."""
    image = load.Project(generated.path, generated.framework)
    with load.production_processes(image, 2) as (first, second):
        check_writes_reach_the_owner(first.base_url, second.base_url, generated.auth)
        check_writes_reach_the_owner(second.base_url, first.base_url, generated.auth)
        with subscribed(second.base_url, account(first.base_url, generated.auth)) as socket:
            os.killpg(second.process.pid, signal.SIGTERM)
            assert close_code(socket) == CLOSE_RESTARTING
