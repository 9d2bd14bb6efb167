"""The Flet client (`client: flet`) in a real browser, against each framework's dev server.

The project's dev server runs on a database of this test's own (SQLite, migrated by the documented
command), so the list starts empty; README's web-mode command serves the client against it.
Debian's Chromium, driven by Playwright, opens it with nothing allowed off this machine, signs in
where the project has accounts, and finds the items made through the API, one of them made after
the page had loaded (the live update: the WebSocket with realtime, polling without); see
flet_client.py. The client's image runs the same check in test_docker_ci.py.

The client's own tests (`uv run --directory client pytest`, run with every documented command on
each variant with the client) drive its logic against the dev server.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from playwright.sync_api import Browser

from .conftest import FULL_VARIANTS, GeneratedProject, on_variants, one_each
from .flet_client import assert_shows_items_live
from .harness import (
    RunningServer,
    assert_ok,
    documented_command,
    is_server_command,
    project_env,
    run,
    serve,
)

BROWSER_VARIANTS = one_each(
    "framework", "auth", "realtime", where=lambda answers: answers.get("client") == "flet"
)


@contextmanager
def fresh_service(project: GeneratedProject) -> Iterator[RunningServer]:
    """The documented dev server on a SQLite database of its own, migrated first."""
    database = {
        "DATABASE_URL": f"sqlite:///{project.path.parent / f'client-{uuid.uuid4().hex}.db'}"
    }
    readme = (project.path / "README.md").read_text()
    migrate = documented_command(readme, "database schema")
    assert_ok(run(migrate, project.path, env=project_env(**database)), migrate)
    server = next(command for command in project.commands() if is_server_command(command))
    with serve(server, project.path, env=database) as service:
        yield service


@on_variants(BROWSER_VARIANTS)
def test_the_client_in_a_browser_shows_the_services_items_live(
    generated: GeneratedProject, chromium: Browser
) -> None:
    project = generated
    command = documented_command((project.path / "README.md").read_text(), "in a browser")
    with (
        fresh_service(project) as service,
        httpx.Client(base_url=service.base_url, timeout=10) as api,
        # Polling every second, where the project has no WebSocket.
        serve(
            command,
            project.path,
            ready_path="/",
            env={"API_URL": service.base_url, "POLL_SECONDS": "1"},
        ) as client,
    ):
        assert_shows_items_live(
            chromium,
            client.base_url,
            api,
            accounts=project.auth == "jwt",
            screenshot=f"client-{project.name}.png",
        )


def test_the_browser_variants_hold_each_framework_and_both_auth_modes() -> None:
    chosen = [FULL_VARIANTS[name] for name in BROWSER_VARIANTS]
    assert {answers["framework"] for answers in chosen} == {"fastapi", "flask", "django"}
    assert {answers["auth"] for answers in chosen} == {"jwt", "none"}
    assert {answers["realtime"] for answers in chosen} == {True, False}
