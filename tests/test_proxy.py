"""Each flavour in production as a team runs it: two replicas of the Dockerfile's CMD, two worker
processes each, one database, and a real reverse proxy (nginx) in front, trusted through
TRUSTED_PROXIES. Failed logins count once whichever process answers, a parallel burst gets no
more password checks than the limit, every client is told apart by its own address, nobody can
pass for another, and a write on one replica is read on the other. Each replica's production
server also ends a hung query in a 503 at the statement timeout, answers an unexpected error
with a 500 problem whose request id comes back through the proxy and stands in its log line, and
(with a Celery broker) stays ready, degraded, while the broker is down. Each replica exports its
requests' traces to one OpenTelemetry collector stand-in, and its /metrics adds up its two
workers' counts.

Clients connect from their own loopback addresses (127.x.y.2, 127.x.y.3, ..., x and y drawn for
the run), so the proxy sees each one's address, as it would on a network; the proxy connects to
the service from 127.0.0.1.
The login counts live where each case says: the default SQLite file the processes of the host
share, or Redis (shared by replicas on any host). The database is a real server, each flavour on
the one its case names.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import secrets
import shutil
import subprocess
import tempfile
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import load
from bench.common import free_port, run

from .harness import (
    BROKER_SERVER_VARIABLES,
    DATABASE_SERVER_VARIABLES,
    PROBLEM,
    STATEMENT_TIMEOUT_SECONDS,
    STATEMENT_TIMEOUT_SLACK_SECONDS,
    ExportedSpan,
    OtlpCollector,
    OutageProxy,
    delete_broker_queue,
    eventually,
    items_table_locked,
    items_table_missing,
    metric_samples,
    otlp_collector,
    scratch_database,
)

PROXY_ADDRESS = "127.0.0.1"
# Few failures, so the test is quick; the window is the service's default minute.
MAX_FAILURES = 3
BURST = 12
PASSWORD = "correct horse battery"
METRICS_TOKEN = "a-metrics-token-for-the-replicas"
NGINX_INSTALL_HINT = "install nginx (Debian: apt-get install nginx) to run the proxy tests"


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.skip(NGINX_INSTALL_HINT)
    return found


@contextmanager
def nginx(upstream_ports: list[int]) -> Iterator[str]:
    """nginx in the foreground, passing requests in turn to the servers on loopback with the
    usual proxy headers: X-Forwarded-For gets the client's address appended."""
    binary = nginx_binary()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="nginx-") as folder:
        prefix = Path(folder)
        config = prefix / "nginx.conf"
        servers = " ".join(f"server {PROXY_ADDRESS}:{port};" for port in upstream_ports)
        config.write_text(
            textwrap.dedent(
                f"""\
                daemon off;
                worker_processes 1;
                pid {prefix}/nginx.pid;
                error_log {prefix}/error.log warn;
                events {{ worker_connections 64; }}
                http {{
                    access_log off;
                    client_body_temp_path {prefix}/body;
                    proxy_temp_path {prefix}/proxy;
                    fastcgi_temp_path {prefix}/fastcgi;
                    uwsgi_temp_path {prefix}/uwsgi;
                    scgi_temp_path {prefix}/scgi;
                    upstream service {{ {servers} }}
                    server {{
                        listen 127.0.0.1:{port};
                        location / {{
                            proxy_pass http://service;
                            proxy_set_header Host $host;
                            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                            proxy_set_header X-Forwarded-Proto $scheme;
                        }}
                    }}
                }}
                """
            )
        )
        process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while True:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                try:
                    httpx.get(f"{base_url}/health/live", timeout=2)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.1)
            yield base_url
        finally:
            process.terminate()
            process.wait(timeout=20)


@contextmanager
def sentry_stand_in() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A Sentry ingest on loopback: the DSN to give the service, and the error events it sent."""
    events: list[dict[str, Any]] = []

    class Ingest(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            # An envelope: a header line, then an item header line and its payload per item.
            lines = body.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if header.strip() and json.loads(header).get("type") == "event":
                    events.append(json.loads(payload))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingest)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://public@127.0.0.1:{server.server_port}/1", events
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def client_from(address: str, base_url: str) -> Iterator[httpx.Client]:
    """A client whose connections come from `address` (any 127.x.y.z is loopback on Linux)."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, base_url=base_url, timeout=30) as client:
        yield client


def login(client: httpx.Client, email: str, password: str, **headers: str) -> int:
    form = {"username": email, "password": password}
    return client.post("/api/v1/auth/token", data=form, headers=headers).status_code


# Each flavour with JWT auth on a database server. FastAPI and Django with the shared Redis
# (REDIS_URL): the login counts and the item read cache live there (FastAPI's Celery broker on the
# same server); Flask, without Redis, counts in the host's SQLite file and reads the database.
CASES = {
    "fastapi": {"database": "postgresql", "celery": True, "broker": "redis", "redis": True},
    "flask": {"database": "mysql"},
    "django": {"database": "postgresql", "redis": True},
}


def redis_store() -> str:
    """A Redis database of the local server. Other tests may use it at the same time: the keys
    of this test are its own (the run's client addresses, its cache key prefix)."""
    server = os.environ.get(BROKER_SERVER_VARIABLES["redis"])
    if not server:
        pytest.skip(f"set {BROKER_SERVER_VARIABLES['redis']} to the URL of a Redis server")
    return f"{server.rstrip('/')}/3"


@pytest.mark.parametrize("framework", load.FRAMEWORKS)
def test_two_replicas_of_two_workers_behind_a_trusted_proxy_count_logins_once(
    framework: str, tmp_path: Path
) -> None:
    answers = {"framework": framework, "auth": "jwt", **CASES[framework]}
    variable = DATABASE_SERVER_VARIABLES[answers["database"]]
    server = os.environ.get(variable)
    if not server:
        pytest.skip(f"set {variable} to the URL of a {answers['database']} server")
    with scratch_database(server) as database_url:
        project = load.prepare_project(tmp_path / "service", answers, database_url=database_url)
        behind_a_proxy(
            project,
            framework,
            tmp_path,
            database_url,
            redis=bool(answers.get("redis")),
            broker=answers.get("broker") == "redis",
        )


def behind_a_proxy(
    project: load.Project,
    framework: str,
    tmp_path: Path,
    database_url: str,
    *,
    redis: bool,
    broker: bool,
) -> None:
    # The replicas share the store as processes of one host share the default file; a file of
    # this test's own, so no other test's counts (same service name) are in it.
    shared: dict[str, str] = {"RATE_LIMIT_STORAGE_URL": f"sqlite:///{tmp_path / 'rate-limits.db'}"}
    if redis:
        # REDIS_URL alone: the login counts go there by default, beside the read cache (under
        # keys of this run's own).
        shared = {"REDIS_URL": redis_store(), "CACHE_KEY_PREFIX": f"proxy-{uuid.uuid4().hex}"}
    ports = [free_port(), free_port()]
    secret_key = secrets.token_urlsafe(48)
    with ExitStack() as stack:
        broker_proxy = None
        if broker:
            # Celery's broker (Redis) behind a TCP proxy the test can stop, on a queue of the
            # run's own, deleted after.
            broker_url = redis_store().rsplit("/", 1)[0] + "/4"
            queue = f"cb-proxy-{uuid.uuid4().hex[:10]}"
            broker_proxy = stack.enter_context(OutageProxy(broker_url))
            broker_settings = {"CELERY_BROKER_URL": broker_url, "CELERY_TASK_DEFAULT_QUEUE": queue}
            stack.callback(delete_broker_queue, project.path, broker_settings)
            shared |= {
                "CELERY_BROKER_URL": broker_proxy.url(broker_url),
                "CELERY_RESULT_BACKEND": broker_proxy.url(broker_url),
                "CELERY_TASK_DEFAULT_QUEUE": queue,
            }
        sentry_dsn, reported = stack.enter_context(sentry_stand_in())
        collector = stack.enter_context(otlp_collector())
        replicas = []
        for port in ports:
            env = load.production_env(framework, port, workers=2)
            # One deployment: the replicas share their secret (a token works on either).
            env.update(
                SECRET_KEY=secret_key,
                TRUSTED_PROXIES=PROXY_ADDRESS,
                LOGIN_MAX_FAILURES=str(MAX_FAILURES),
                DATABASE_STATEMENT_TIMEOUT_SECONDS=str(STATEMENT_TIMEOUT_SECONDS),
                SENTRY_DSN=sentry_dsn,
                OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
                METRICS_TOKEN=METRICS_TOKEN,
            )
            if redis:
                del env["RATE_LIMIT_STORAGE_URL"]  # unset: the counts go to REDIS_URL
            env.update(shared)
            command = ["uv", "run", *project.server_command]
            command += load.loopback_args(project.server_command, port)
            server = load.start_server(f"{framework}-{port}", command, project.path, env, port)
            replicas.append(stack.enter_context(server))
        stack.enter_context(errors_reported(replicas))
        proxy = stack.enter_context(nginx(ports))
        # Loopback addresses of this run's own (all of 127.0.0.0/8 is loopback): the counts are
        # per address, and another test may use the same Redis database at the same time.
        net = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}"
        stranger_at, owner_at, direct_at, burst_at = (f"{net}.{host}" for host in (2, 3, 4, 5))
        stranger = stack.enter_context(client_from(stranger_at, proxy))
        owner = stack.enter_context(client_from(owner_at, proxy))
        direct = stack.enter_context(client_from(direct_at, replicas[1].base_url))

        email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
        registered = owner.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text

        # A stranger fails for the owner's account, the proxy handing each try to the next
        # replica: the failures count once, in the one store, and the stranger is refused.
        statuses = [login(stranger, email, "wrong guess") for _ in range(MAX_FAILURES + 1)]
        assert statuses == [401] * MAX_FAILURES + [429], statuses
        # Naming someone else in X-Forwarded-For does not help: the proxy appends the real
        # address, and the service reads from the right.
        assert login(stranger, email, "wrong guess", **{"X-Forwarded-For": f"{net}.9"}) == 429
        # The owner, another client of the same proxy, is not locked out.
        assert login(owner, email, PASSWORD) == 200

        # Straight to a replica, a peer that is not a trusted proxy names nobody: its failures
        # are its own, whatever X-Forwarded-For says, and do not fall on the owner's address.
        pretending = {"X-Forwarded-For": owner_at}
        statuses = [login(direct, email, "wrong guess", **pretending) for _ in range(MAX_FAILURES)]
        assert statuses == [401] * MAX_FAILURES, statuses
        assert login(direct, email, "wrong guess", **pretending) == 429
        assert login(owner, email, PASSWORD) == 200

        # A parallel burst of wrong passwords from one client, over both replicas and all four
        # processes: no more are checked (401) than the limit, the rest are refused (429).
        with (
            client_from(burst_at, proxy) as burst,
            ThreadPoolExecutor(max_workers=BURST) as pool,
        ):
            statuses = list(pool.map(lambda _: login(burst, email, "wrong"), range(BURST)))
        assert sorted(statuses) == [401] * MAX_FAILURES + [429] * (BURST - MAX_FAILURES)

        # A write on one replica is read on the other, whatever the other has cached.
        form = {"username": email, "password": PASSWORD}
        token = owner.post("/api/v1/auth/token", data=form).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        with (
            client_from(owner_at, replicas[0].base_url) as first,
            client_from(owner_at, replicas[1].base_url) as second,
        ):
            created = first.post("/api/v1/items", json={"name": "Lamp"}, headers=headers)
            assert created.status_code == 201, created.text
            url = f"/api/v1/items/{created.json()['id']}"
            for _ in range(3):  # the second replica reads it, and caches it
                read = second.get(url, headers=headers)
                assert read.status_code == 200, read.text
                assert read.json()["name"] == "Lamp"
            renamed = first.patch(url, json={"name": "Desk lamp"}, headers=headers)
            assert renamed.status_code == 200, renamed.text
            for _ in range(3):
                assert second.get(url, headers=headers).json()["name"] == "Desk lamp"
            assert first.delete(url, headers=headers).status_code == 204
            assert second.get(url, headers=headers).status_code == 404
        if redis:
            # The reads went through the cache: the item has an entry and a generation there.
            count = "import sys, redis; c = redis.Redis.from_url(sys.argv[1]); "
            count += "print(len(c.keys(sys.argv[2] + ':*')))"
            keys = run(
                [
                    "uv",
                    "run",
                    "--no-sync",
                    "python",
                    "-c",
                    count,
                    shared["REDIS_URL"],
                    shared["CACHE_KEY_PREFIX"],
                ],
                project.path,
            )
            assert keys.stdout.strip() == "2", keys.stdout

        # A query that hangs (another session holds the items table) ends in a 503 problem at
        # the statement timeout, on each replica's production server.
        for replica in replicas:
            with (
                client_from(owner_at, replica.base_url) as straight,
                items_table_locked(framework, database_url),
            ):
                started = time.monotonic()
                hung = straight.get("/api/v1/items", headers=headers)
                elapsed = time.monotonic() - started
            assert hung.status_code == 503, hung.text
            assert hung.headers["content-type"].startswith(PROBLEM)
            assert elapsed >= STATEMENT_TIMEOUT_SECONDS
            assert elapsed < STATEMENT_TIMEOUT_SECONDS + STATEMENT_TIMEOUT_SLACK_SECONDS

        # An unexpected error (the items table missing, as after a deployment whose migrations
        # did not run) is a 500 problem that carries the request's id back through the proxy,
        # and the replica's log line for it names the id.
        request_ids = [f"proxy-500-{index}" for index, _ in enumerate(replicas)]
        with items_table_missing(framework, database_url):
            for request_id in request_ids:
                failed = owner.get("/api/v1/items", headers={**headers, "X-Request-ID": request_id})
                assert failed.status_code == 500, failed.text
                assert failed.headers["content-type"].startswith(PROBLEM)
                assert failed.headers["x-request-id"] == request_id
                assert "Traceback" not in failed.text

        # The proxy took turns: each replica answered one of them and logged its id (a server
        # writes the line once the response is sent: the client may read it first).
        def answered_500s() -> list[set[object]]:
            return [
                {
                    line.get("request_id")
                    for line in logged_requests(replica.log())
                    if line.get("status") == 500
                }
                & set(request_ids)
                for replica in replicas
            ]

        answered = eventually(
            answered_500s, lambda found: sum(map(len, found)) == len(request_ids), timeout=10
        )
        assert [len(ids) for ids in answered] == [1, 1], answered
        assert set().union(*answered) == set(request_ids), answered
        # Each replica reported its 500 to Sentry (sentry-sdk sends in the background), naming
        # the request and nothing that identifies who sent it: no token, no client address.
        eventually(lambda: len(reported), lambda count: count >= len(replicas), timeout=15)
        assert len(reported) == len(replicas), reported
        for event in reported:
            assert event["exception"]["values"], event
            assert event["request"]["url"].endswith("/api/v1/items"), event["request"]
            sent = json.dumps(event)
            assert token not in sent
            assert owner_at not in sent, event["request"]
        # Each replica's workers export their traces: the JSON log line of each 500 names a
        # trace the collector holds, the request named by its route template and its queries
        # in it.
        traces = {
            line["trace_id"]
            for replica in replicas
            for line in logged_requests(replica.log())
            if line.get("request_id") in request_ids
        }
        assert len(traces) == len(replicas), traces

        def server_spans(spans: list[ExportedSpan]) -> dict[str, ExportedSpan]:
            kind = OtlpCollector.SERVER
            return {span.trace_id: span for span in spans if span.kind == kind}

        spans = collector.wait_for(lambda spans: traces <= server_spans(spans).keys())
        for trace_id in traces:
            request = server_spans(spans)[trace_id]
            assert request.name.startswith("GET "), request
            assert str(request.attributes.get("http.route")).endswith("items"), request
            queries = [span for span in spans if span.trace_id == trace_id and span != request]
            assert any("db.query.text" in span.attributes for span in queries), queries

        if broker_proxy is not None:
            # The broker stops: every replica stays ready (200, "degraded", naming the broker),
            # so the load balancer keeps them, and registration goes on without it.
            broker_proxy.stop()
            for replica in replicas:
                ready = httpx.get(f"{replica.base_url}/health/ready", timeout=30)
                assert ready.status_code == 200, ready.text
                assert ready.json()["status"] == "degraded", ready.text
                assert ready.json()["checks"]["broker"] == "error", ready.text
            later = {"email": f"later-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
            assert owner.post("/api/v1/auth/register", json=later).status_code == 201

        # Each replica's /metrics adds up its two workers: whichever worker answers a scrape,
        # the count of answered logins is the number the replica logged.
        for replica in replicas:
            logins = Counter(
                str(line["status"])
                for line in logged_requests(replica.log())
                if line["path"] == "/api/v1/auth/token"
            )
            assert set(logins) >= {"200", "401", "429"}, logins
            refused = httpx.get(f"{replica.base_url}/metrics", timeout=10)
            assert refused.status_code == 401, refused.text
            for _ in range(4):  # a scrape reaches one worker or the other
                assert scraped_logins(replica.base_url) == logins

        # Each request's log line names its client: the proxy's word for it, or the peer.
        clients = {
            line["client"]
            for replica in replicas
            for line in logged_requests(replica.log())
            if line["path"].startswith("/api/v1/auth/")
        }
        assert clients == {stranger_at, owner_at, direct_at, burst_at}, clients


@contextmanager
def errors_reported(replicas: list[load.Server]) -> Iterator[None]:
    """A failed check says what the servers logged as errors (their logs go when they stop)."""
    try:
        yield
    except AssertionError as failure:
        errors = [line for replica in replicas for line in replica.log_errors()]
        raise AssertionError(f"{failure}\nServer errors: {errors}") from failure


def scraped_logins(base_url: str) -> Counter[str]:
    """The logins a server's /metrics counted, by status."""
    response = httpx.get(
        f"{base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    counted: Counter[str] = Counter()
    for (name, pairs), value in metric_samples(response.text).items():
        labels = dict(pairs)
        if name == "http_server_requests_total" and labels["route"].endswith("auth/token"):
            counted[labels["status"]] += int(value)
    return counted


def logged_requests(log: str) -> list[dict[str, object]]:
    """The service's one-line-per-request JSON records."""
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [record for record in records if record.get("event") == "request"]
