"""Each flavour's production server behind a real reverse proxy (nginx), trusted through
TRUSTED_PROXIES: every client is told apart by its own address, and nobody can pass for another.

Clients connect from their own loopback addresses (127.0.0.2, 127.0.0.3, ...), so the proxy sees
each one's address, as it would on a network; the proxy connects to the service from 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bench import load
from bench.common import free_port

PROXY_ADDRESS = "127.0.0.1"
# Few failures, so the test is quick; the window is the service's default minute.
MAX_FAILURES = 3
PASSWORD = "correct horse battery"
NGINX_INSTALL_HINT = "install nginx (Debian: apt-get install nginx) to run the proxy tests"


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.skip(NGINX_INSTALL_HINT)
    return found


@contextmanager
def nginx(upstream_port: int) -> Iterator[str]:
    """nginx in the foreground, passing every request to the service on loopback with the usual
    proxy headers: X-Forwarded-For gets the client's address appended."""
    binary = nginx_binary()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="nginx-") as folder:
        prefix = Path(folder)
        config = prefix / "nginx.conf"
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
                    server {{
                        listen 127.0.0.1:{port};
                        location / {{
                            proxy_pass http://{PROXY_ADDRESS}:{upstream_port};
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
def client_from(address: str, base_url: str) -> Iterator[httpx.Client]:
    """A client whose connections come from `address` (any 127.x.y.z is loopback on Linux)."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, base_url=base_url, timeout=30) as client:
        yield client


def login(client: httpx.Client, email: str, password: str, **headers: str) -> int:
    form = {"username": email, "password": password}
    return client.post("/api/v1/auth/token", data=form, headers=headers).status_code


@pytest.mark.parametrize("framework", load.FRAMEWORKS)
def test_behind_a_trusted_proxy_each_client_is_told_apart_and_none_can_pass_for_another(
    framework: str, tmp_path: Path
) -> None:
    project = load.prepare_project(
        tmp_path / "service", {"framework": framework, "auth": "jwt", "database": "sqlite"}
    )
    port = free_port()
    env = load.production_env(framework, port, workers=1)
    env.update(TRUSTED_PROXIES=PROXY_ADDRESS, LOGIN_MAX_FAILURES=str(MAX_FAILURES))
    command = ["uv", "run", *project.server_command]
    command += load.loopback_args(project.server_command, port)
    with (
        load.start_server(framework, command, project.path, env, port) as service,
        nginx(port) as proxy,
        client_from("127.0.0.2", proxy) as stranger,
        client_from("127.0.0.3", proxy) as owner,
        client_from("127.0.0.4", service.base_url) as direct,
    ):
        email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
        registered = owner.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text

        # A stranger fails for the owner's account until the stranger's own address is refused.
        assert [login(stranger, email, "wrong guess") for _ in range(MAX_FAILURES)] == [
            401
        ] * MAX_FAILURES
        assert login(stranger, email, "wrong guess") == 429
        # Naming someone else in X-Forwarded-For does not help: the proxy appends the real
        # address, and the service reads from the right.
        assert login(stranger, email, "wrong guess", **{"X-Forwarded-For": "127.0.0.9"}) == 429
        # The owner, another client of the same proxy, is not locked out.
        assert login(owner, email, PASSWORD) == 200

        # Straight to the service, a peer that is not a trusted proxy names nobody: its failures
        # are its own, whatever X-Forwarded-For says, and do not fall on the owner's address.
        pretending = {"X-Forwarded-For": "127.0.0.3"}
        statuses = [login(direct, email, "wrong guess", **pretending) for _ in range(MAX_FAILURES)]
        assert statuses == [401] * MAX_FAILURES
        assert login(direct, email, "wrong guess", **pretending) == 429
        assert login(owner, email, PASSWORD) == 200

        # Each request's log line names its client: the proxy's word for it, or the peer.
        clients = {
            line["client"]
            for line in logged_requests(service.log())
            if line["path"].startswith("/api/")
        }
        assert clients == {"127.0.0.2", "127.0.0.3", "127.0.0.4"}, clients


def logged_requests(log: str) -> list[dict[str, object]]:
    """The service's one-line-per-request JSON records."""
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [record for record in records if record.get("event") == "request"]
