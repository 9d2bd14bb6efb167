"""The Flet client (`client: flet`) in a real browser, against each framework's dev server.

The project's dev server runs on a database of this test's own (SQLite, migrated by the documented
command), so the list starts empty; README's web-mode command serves the client against it.
Debian's Chromium, driven by Playwright, opens it
with nothing allowed off this machine, signs in where the project has accounts, and finds the
items made through the API, one of them made after the page had loaded (the live update: the
WebSocket with realtime, polling without). Flutter paints on a canvas, so the page is read through
its semantics tree (the accessibility tree Flutter builds once asked to), as a screen reader
would. A screenshot of the final page is kept in `artifacts/` (COPIER_BACKEND_ARTIFACTS).

The client's own tests (`uv run --directory client pytest`, run with every documented command on
each variant with the client) drive its logic against the dev server.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page

from .conftest import (
    FULL_VARIANTS,
    GeneratedProject,
    keep_on_this_machine,
    on_variants,
    one_each,
)
from .harness import (
    TEMPLATE_ROOT,
    RunningServer,
    assert_ok,
    documented_command,
    is_server_command,
    project_env,
    run,
    serve,
)

PASSWORD = "correct horse battery"
WAIT_MS = 30_000
# The one request Flutter's web engine makes off the machine: the Rive animation runtime, which
# the client does not use. It is refused here; the page works without it.
RIVE_RUNTIME = "https://cdn.jsdelivr.net/npm/@rive-app/"

BROWSER_VARIANTS = one_each(
    "framework", "auth", "realtime", where=lambda answers: answers.get("client") == "flet"
)


def artifacts() -> Path:
    folder = Path(os.environ.get("COPIER_BACKEND_ARTIFACTS", TEMPLATE_ROOT / "artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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


def enable_semantics(page: Page) -> None:
    """Ask Flutter for its semantics tree (the button a screen reader would press)."""
    page.wait_for_selector("flt-semantics-placeholder", state="attached", timeout=WAIT_MS)
    page.evaluate("document.querySelector('flt-semantics-placeholder').click()")
    page.wait_for_selector("flt-semantics", state="attached", timeout=WAIT_MS)


def type_into(page: Page, label: str, text: str) -> None:
    field = page.get_by_label(label)
    field.click()
    page.keyboard.type(text)


@on_variants(BROWSER_VARIANTS)
def test_the_client_in_a_browser_shows_the_services_items_live(
    generated: GeneratedProject, chromium: Browser
) -> None:
    project = generated
    command = documented_command((project.path / "README.md").read_text(), "in a browser")
    headers: dict[str, str] = {}
    with (
        fresh_service(project) as service,
        httpx.Client(base_url=service.base_url, timeout=10) as api,
    ):
        email = f"flet-{uuid.uuid4().hex[:12]}@example.com"
        if project.auth == "jwt":
            registered = api.post(
                "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
            )
            assert registered.status_code == 201, registered.text
            token = api.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        before = [f"lamp-{uuid.uuid4().hex[:6]}", f"desk-{uuid.uuid4().hex[:6]}"]
        for name in before:
            created = api.post("/api/v1/items", json={"name": name}, headers=headers)
            assert created.status_code == 201, created.text

        # Polling every second, where the project has no WebSocket.
        settings = {"API_URL": service.base_url, "POLL_SECONDS": "1"}
        with serve(command, project.path, ready_path="/", env=settings) as client:
            context = chromium.new_context()
            left_this_machine = keep_on_this_machine(context)
            page = context.new_page()
            try:
                page.goto(client.base_url)
                enable_semantics(page)
                if project.auth == "jwt":
                    type_into(page, "Email", email)
                    type_into(page, "Password", PASSWORD)
                    page.get_by_role("button", name="Log in").click()
                for name in before:
                    page.get_by_text(name).wait_for(timeout=WAIT_MS)

                later = f"lamp-after-load-{uuid.uuid4().hex[:6]}"
                created = api.post("/api/v1/items", json={"name": later}, headers=headers)
                assert created.status_code == 201, f"{created.text}\n{service.log()[-3000:]}"
                page.get_by_text(later).wait_for(timeout=WAIT_MS)
                page.screenshot(path=str(artifacts() / f"client-{project.name}.png"))
            finally:
                context.close()
    assert all(url.startswith(RIVE_RUNTIME) for url in left_this_machine), left_this_machine


def test_the_browser_variants_hold_each_framework_and_both_auth_modes() -> None:
    chosen = [FULL_VARIANTS[name] for name in BROWSER_VARIANTS]
    assert {answers["framework"] for answers in chosen} == {"fastapi", "flask", "django"}
    assert {answers["auth"] for answers in chosen} == {"jwt", "none"}
    assert {answers["realtime"] for answers in chosen} == {True, False}
