"""Each flavour's production server takes load without a single error: the load harness of
bench/ (the code the benchmark runs), small and bounded in time, on loopback."""

from __future__ import annotations

import shutil
import socketserver
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import layers, load
from bench.common import free_port, project_env, run

# A few seconds per endpoint: thousands of health checks and item reads, and a few logins (each
# one argon2 check, slow on purpose: with more connections than the machine has cores, they share
# it and may all finish late), cheap enough to run on every change.
QUICK = load.LoadSettings(duration=3, connections=4, threads=2, warmup=0, repetitions=1)


@pytest.fixture(autouse=True)
def wrk_installed() -> None:
    if shutil.which("wrk") is None:
        pytest.skip(load.WRK_INSTALL_HINT)


@pytest.mark.parametrize("framework", load.FRAMEWORKS)
def test_production_server_serves_health_login_and_item_reads_without_errors(
    framework: str, tmp_path: Path
) -> None:
    project = load.prepare_project(
        tmp_path / "service", {"framework": framework, "auth": "jwt", "database": "sqlite"}
    )
    assert project.server_command[0] in ("uvicorn", "gunicorn"), project.server_command
    if project.server_command[0] == "gunicorn":
        assert gunicorn_builds_access_lines(project.path) is False
    flavour = load.load_flavour(project, QUICK, bare=False)
    assert [measured.endpoint for measured in flavour.results] == ["health", "login", "item read"]
    for measured in flavour.results:
        (run,) = measured.runs
        assert run.requests > 0, measured.endpoint
        assert run.errors == 0, (measured.endpoint, run)
        assert run.p99_ms > 0, measured.endpoint
    assert flavour.log_errors == []


def gunicorn_builds_access_lines(project: Path) -> bool:
    """Whether Gunicorn, with the project's gunicorn.conf.py, formats an access line for each
    request. The application logs every request itself, and a line built for a logger that
    drops it cost about 30 us of a 400 us health check."""
    code = (
        "import runpy\n"
        "from gunicorn.config import Config\n"
        "config = Config()\n"
        "for name, value in runpy.run_path('gunicorn.conf.py').items():\n"
        "    if name in config.settings:\n"
        "        config.set(name, value)\n"
        "print(config.logger_class(config).access_log_enabled)\n"
    )
    result = run(["uv", "run", "--no-sync", "python", "-c", code], project)
    return {"True": True, "False": False}[result.stdout.strip().splitlines()[-1]]


# --- The error counts the assertions above rely on ----------------------------------------------


class HangUp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        """Close the connection without an answer: a read error for the client."""


@pytest.fixture
def hang_up_server() -> Iterator[str]:
    with socketserver.ThreadingTCPServer(("127.0.0.1", free_port()), HangUp) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


def test_wrk_counts_socket_errors(hang_up_server: str) -> None:
    settings = load.LoadSettings(connections=2, threads=1)
    result = load.wrk(hang_up_server, load.HEALTH, settings, 1)
    assert result.socket_errors["read"] > 0, result
    assert result.errors > 0


def test_wrk_counts_error_responses(tmp_path: Path) -> None:
    """A real server (Python's own), once on a file it serves and once on a missing one."""
    (tmp_path / "health").mkdir()
    (tmp_path / "health" / "live").write_text("ok\n")
    port = free_port()
    command = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    settings = load.LoadSettings(connections=2, threads=1)
    with load.start_server("http.server", command, tmp_path, project_env(), port) as server:
        served = load.wrk(server.base_url, load.HEALTH, settings, 1)
        missing = load.wrk(server.base_url, load.Request("missing", "GET", "/nope"), settings, 1)
    assert served.requests > 0
    assert served.errors == 0, served
    assert missing.non_2xx_3xx == missing.requests > 0, missing


def test_each_profile_sample_goes_to_the_layer_of_its_innermost_frame_that_has_one() -> None:
    """bench/layers.py's reading of py-spy's raw samples: one stack and a count per line."""
    raw = "\n".join(
        [
            # json called by structlog, inside our request log: the log's.
            'process 7:"uvicorn";run (uvicorn/server.py:70);__call__ (my_service/logs.py:120);'
            "_process_event (structlog/_base.py:200);dumps (json/__init__.py:231) 5",
            # SQLAlchemy called by the token check: the database's.
            "__call__ (starlette/routing.py:70);get_current_user (my_service/auth.py:31);"
            "user_get (my_service/users/selectors.py:12);execute (sqlalchemy/orm/session.py:9) 3",
            # The token check itself.
            "__call__ (starlette/routing.py:70);decode (jwt/api_jwt.py:100) 2",
            # The response model, our schema and pydantic.
            "serialize_response (fastapi/routing.py:150);validate_python (pydantic/main.py:1) 4",
            # Django's ORM is the database's, the rest of Django the framework's.
            "get_response (django/core/handlers/base.py:1);"
            "execute (django/db/backends/utils.py:1) 6",
            "get_response (django/core/handlers/base.py:1) 7",
            # A route that calls nothing of a layer.
            "read_item (my_service/items/api.py:55) 1",
        ]
    )
    counts = layers.count_layers(raw, "my_service")
    assert counts == {
        "log": 5,
        "database": 9,
        "auth": 2,
        "serialisation": 4,
        "server and framework": 7,
        "route and other": 1,
    }
