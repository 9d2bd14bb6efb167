"""Faults: the database or the broker stops, or hangs, while the dev server runs, then comes back.

The servers are shared by every test run, so they are never stopped: the service reaches its
server through an OutageProxy, and stopping the proxy is the server going down (every open
connection closed, new ones refused), freezing it the server hanging (nothing answered). The
service must say so within seconds (readiness 503 naming the check, liveness 200, a problem for
an API call that needs a stopped database, never a hang) and recover by itself, without a
restart, when the server is back.
"""

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from .conftest import GeneratedProject, has_users, on_broker_server, on_variants, one_each
from .harness import (
    PROBLEM,
    STATEMENT_TIMEOUT_SECONDS,
    STATEMENT_TIMEOUT_SLACK_SECONDS,
    OutageProxy,
    RunningServer,
    delete_broker_queue,
    is_server_command,
    items_table_locked,
    local_setting,
    serve,
)

# Each framework and each database server (a few variants hold them all), and each broker server
# with users (whose registration queues the welcome email).
DATABASE_SERVER_VARIANTS = one_each(
    "framework", "database", where=lambda answers: answers["database"] != "sqlite"
)
BROKER_SERVER_VARIANTS = one_each(
    "broker", where=lambda answers: on_broker_server(answers) and has_users(answers)
)

# Every answer during an outage comes within this: a stopped server refuses connections at once,
# and readiness gives a check of a server that hangs 3 s.
ANSWER_SECONDS = 5.0
# Once the server is back, readiness is 200 again within this.
RECOVERY_SECONDS = 15.0

DATABASE_UNAVAILABLE = "The database is unavailable; try again later."


def other_checks(answers: dict[str, object]) -> dict[str, str]:
    """The readiness checks of the project's optional dependencies, all up."""
    return {"cache": "ok"} if answers.get("redis") else {}


def server_command(project: GeneratedProject) -> str:
    return next(command for command in project.commands() if is_server_command(command))


@contextmanager
def client_of(server: RunningServer) -> Iterator[httpx.Client]:
    # A little over the bound, so a late answer fails on its time, a hang on the timeout.
    with httpx.Client(base_url=server.base_url, timeout=ANSWER_SECONDS + 10) as client:
        yield client


def answer(client: httpx.Client, method: str, path: str, **kwargs: object) -> httpx.Response:
    """One request that must be answered within ANSWER_SECONDS."""
    started = time.monotonic()
    try:
        response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    except httpx.TimeoutException:
        pytest.fail(f"{method} {path} got no answer in {client.timeout.read} s")
    elapsed = time.monotonic() - started
    print(f"{method} {path}: {response.status_code} in {elapsed:.2f} s")
    assert elapsed < ANSWER_SECONDS, f"{method} {path} took {elapsed:.1f} s"
    return response


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, object] = response.json()
    assert body["status"] == status
    return body


def assert_unavailable(response: httpx.Response, *, checks: dict[str, str]) -> None:
    """Readiness during an outage: 503, naming the failing check."""
    body = assert_problem(response, 503)
    assert body["checks"] == checks
    failing = [name for name, status in checks.items() if status != "ok"]
    assert body["detail"] == f"Failing checks: {', '.join(failing)}."


def assert_degraded(response: httpx.Response, *, checks: dict[str, str]) -> None:
    """Readiness while a dependency the service can do without is out: 200, naming it."""
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "degraded", "checks": checks}


def wait_until_ready(client: httpx.Client, server: RunningServer) -> None:
    """Readiness is 200 "ok" again, from the same process (no restart), within
    RECOVERY_SECONDS."""
    started = time.monotonic()
    while True:
        response = answer(client, "GET", "/health/ready")
        if response.status_code == 200 and response.json()["status"] == "ok":
            return
        assert server.process.poll() is None, server.log()[-6000:]
        assert time.monotonic() - started < RECOVERY_SECONDS, (
            f"still not ready {RECOVERY_SECONDS} s after the server came back: {response.text}\n"
            f"{server.log()[-6000:]}"
        )
        time.sleep(0.2)


def assert_a_hang_is_reported(
    proxy: OutageProxy,
    client: httpx.Client,
    server: RunningServer,
    reported: Callable[[httpx.Response], None],
) -> None:
    """The server hangs: readiness still answers, on its own time, and recovers after."""
    proxy.freeze()
    reported(answer(client, "GET", "/health/ready"))
    assert answer(client, "GET", "/health/live").json() == {"status": "ok"}
    proxy.start()
    wait_until_ready(client, server)


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def register(client: httpx.Client, email: str) -> httpx.Response:
    payload = {"email": email, "password": "correct horse battery"}
    return answer(client, "POST", "/api/v1/auth/register", json=payload)


def write(project: GeneratedProject, client: httpx.Client) -> Callable[[], httpx.Response]:
    """A request that writes to the database: a registration, or an item without auth."""
    if project.auth == "jwt":
        return lambda: register(client, unique_email())
    return lambda: answer(client, "POST", "/api/v1/items", json={"name": "Lamp"})


def assert_writes(project: GeneratedProject, client: httpx.Client) -> dict[str, str]:
    """A write works (with auth, a new user signs in too); returns the headers that read items."""
    response = write(project, client)()
    assert response.status_code == 201, response.text
    if project.auth == "none":
        return {}
    form = {"username": response.json()["email"], "password": "correct horse battery"}
    token = answer(client, "POST", "/api/v1/auth/token", data=form)
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert answer(client, "GET", "/api/v1/items", headers=headers).status_code == 200
    return headers


on_database_servers = on_variants(DATABASE_SERVER_VARIANTS)
on_broker_servers = on_variants(BROKER_SERVER_VARIANTS)


@on_database_servers
def test_a_database_outage_is_reported_and_recovered_from_without_a_restart(
    generated: GeneratedProject,
) -> None:
    database_url = local_setting(generated.path, "DATABASE_URL")
    # With Celery, the broker stays up (and Redis, with it).
    database_down = {
        "database": "error",
        **({"broker": "ok"} if generated.answers.get("celery") else {}),
        **other_checks(generated.answers),
    }
    with (
        OutageProxy(database_url) as proxy,
        serve(
            server_command(generated),
            generated.path,
            env={"DATABASE_URL": proxy.url(database_url)},
        ) as server,
        client_of(server) as client,
    ):
        assert answer(client, "GET", "/health/ready").status_code == 200
        headers = assert_writes(generated, client)

        proxy.stop()
        assert_unavailable(answer(client, "GET", "/health/ready"), checks=database_down)
        assert answer(client, "GET", "/health/live").json() == {"status": "ok"}
        # A route that needs the database is a 503 problem too (with auth, a signed-in user's).
        for response in (
            write(generated, client)(),
            answer(client, "GET", "/api/v1/items", headers=headers),
        ):
            assert assert_problem(response, 503)["detail"] == DATABASE_UNAVAILABLE

        proxy.start()
        wait_until_ready(client, server)
        assert_writes(generated, client)

        assert_a_hang_is_reported(
            proxy, client, server, lambda ready: assert_unavailable(ready, checks=database_down)
        )
        assert_writes(generated, client)

        assert server.process.poll() is None, server.log()[-6000:]
        # An outage is logged as such, one line a request, not as a bug with a traceback.
        assert "database.unavailable" in server.log()
        assert "Traceback" not in server.log(), server.log()[-6000:]


@on_database_servers
def test_a_hung_query_is_a_503_within_the_statement_timeout(generated: GeneratedProject) -> None:
    database_url = local_setting(generated.path, "DATABASE_URL")
    bound = {"DATABASE_STATEMENT_TIMEOUT_SECONDS": str(STATEMENT_TIMEOUT_SECONDS)}
    with (
        serve(server_command(generated), generated.path, env=bound) as server,
        client_of(server) as client,
    ):
        headers = assert_writes(generated, client)
        with items_table_locked(generated.answers["framework"], database_url):
            started = time.monotonic()
            response = answer(client, "GET", "/api/v1/items", headers=headers)
            elapsed = time.monotonic() - started
            assert assert_problem(response, 503)["detail"] == DATABASE_UNAVAILABLE
            # The database cancelled the statement at its bound, not before, not much after.
            assert elapsed >= STATEMENT_TIMEOUT_SECONDS
            assert elapsed < STATEMENT_TIMEOUT_SECONDS + STATEMENT_TIMEOUT_SLACK_SECONDS
            # Readiness reads no table: the database answers, so the service is ready.
            assert answer(client, "GET", "/health/ready").status_code == 200
        assert answer(client, "GET", "/api/v1/items", headers=headers).status_code == 200
        assert server.process.poll() is None, server.log()[-6000:]
        assert "database.unavailable" in server.log()
        assert "Traceback" not in server.log(), server.log()[-6000:]


@on_broker_servers
def test_a_broker_outage_leaves_readiness_degraded_and_registration_goes_on(
    generated: GeneratedProject,
) -> None:
    broker_url = local_setting(generated.path, "CELERY_BROKER_URL")
    # A queue of this test's own: the tasks it sends reach no worker, and are deleted after.
    queue = f"cb-faults-{uuid.uuid4().hex[:10]}"
    broker_down = {"database": "ok", "broker": "error", **other_checks(generated.answers)}
    try:
        with (
            OutageProxy(broker_url) as proxy,
            serve(
                server_command(generated),
                generated.path,
                env={
                    "CELERY_BROKER_URL": proxy.url(broker_url),
                    "CELERY_TASK_DEFAULT_QUEUE": queue,
                },
            ) as server,
            client_of(server) as client,
        ):
            assert answer(client, "GET", "/health/ready").status_code == 200
            assert register(client, unique_email()).status_code == 201

            proxy.stop()
            # The service serves without its broker: it stays in the load balancer.
            assert_degraded(answer(client, "GET", "/health/ready"), checks=broker_down)
            assert answer(client, "GET", "/health/live").json() == {"status": "ok"}
            # The user is committed before the email is queued: the registration stands, and
            # the service logs the email it could not queue (housekeeping queues it later).
            failed_before = server.log().count("welcome_email.enqueue_failed")
            assert register(client, unique_email()).status_code == 201
            failed = server.log().count("welcome_email.enqueue_failed")
            assert failed == failed_before + 1, server.log()[-6000:]

            proxy.start()
            wait_until_ready(client, server)
            assert register(client, unique_email()).status_code == 201
            # Queued this time: no new failure.
            assert server.log().count("welcome_email.enqueue_failed") == failed, server.log()

            assert_a_hang_is_reported(
                proxy, client, server, lambda ready: assert_degraded(ready, checks=broker_down)
            )
            assert server.process.poll() is None, server.log()[-6000:]
    finally:
        delete_broker_queue(
            generated.path, {"CELERY_BROKER_URL": broker_url, "CELERY_TASK_DEFAULT_QUEUE": queue}
        )
