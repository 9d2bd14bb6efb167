"""The Flet client's page in Chromium (Playwright), shared by the browser test against the dev
server (test_client.py) and the client's image (test_docker_ci.py).

Flutter paints on a canvas, so the page is read through its semantics tree (the accessibility tree
Flutter builds once asked to), as a screen reader would. Nothing may leave this machine but the one
request Flutter's web engine makes for the Rive animation runtime, which the client does not use.
"""

import os
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from .conftest import keep_on_this_machine
from .harness import TEMPLATE_ROOT

PASSWORD = "correct horse battery"
WAIT_MS = 30_000
RIVE_RUNTIME = "https://cdn.jsdelivr.net/npm/@rive-app/"


def artifacts() -> Path:
    folder = Path(os.environ.get("COPIER_BACKEND_ARTIFACTS", TEMPLATE_ROOT / "artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def enable_semantics(page: Page) -> None:
    """Ask Flutter for its semantics tree (the button a screen reader would press)."""
    page.wait_for_selector("flt-semantics-placeholder", state="attached", timeout=WAIT_MS)
    page.evaluate("document.querySelector('flt-semantics-placeholder').click()")
    page.wait_for_selector("flt-semantics", state="attached", timeout=WAIT_MS)


def type_into(page: Page, label: str, text: str) -> None:
    """Fill the text field labelled `label`. While a field has focus, Flutter edits its text in a
    real input element; filling that element sets the whole text in one input event, where typed
    keys can be lost on a busy machine (seen: two characters of a password), and what it holds is
    read back before going on."""
    page.get_by_label(label).click()
    editing = page.locator(":focus")
    editing.fill(text)
    expect(editing).to_have_value(text, timeout=WAIT_MS)


def assert_shows_items_live(
    chromium: Browser, client_url: str, api: httpx.Client, *, accounts: bool, screenshot: str
) -> None:
    """Items made through the service's API (`api`) show in the client at `client_url`, one of
    them made after the page loaded; with accounts, after signing in through the form as a new
    user. A screenshot of the final page is kept in artifacts/ (COPIER_BACKEND_ARTIFACTS)."""
    email = f"flet-{uuid.uuid4().hex[:12]}@example.com"
    headers: dict[str, str] = {}
    if accounts:
        registered = api.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        token = api.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    before = [f"lamp-{uuid.uuid4().hex[:6]}", f"desk-{uuid.uuid4().hex[:6]}"]
    for name in before:
        created = api.post("/api/v1/items", json={"name": name}, headers=headers)
        assert created.status_code == 201, created.text

    context = chromium.new_context()
    left_this_machine = keep_on_this_machine(context)
    page = context.new_page()
    try:
        page.goto(client_url)
        enable_semantics(page)
        if accounts:
            type_into(page, "Email", email)
            type_into(page, "Password", PASSWORD)
            page.get_by_role("button", name="Log in").click()
        for name in before:
            page.get_by_text(name).wait_for(timeout=WAIT_MS)

        later = f"lamp-after-load-{uuid.uuid4().hex[:6]}"
        created = api.post("/api/v1/items", json={"name": later}, headers=headers)
        assert created.status_code == 201, created.text
        page.get_by_text(later).wait_for(timeout=WAIT_MS)
        page.screenshot(path=str(artifacts() / screenshot))
    except Exception:
        # What the page showed when it went wrong, beside the screenshot of a success.
        page.screenshot(path=str(artifacts() / f"failed-{screenshot}"))
        raise
    finally:
        context.close()
    assert all(url.startswith(RIVE_RUNTIME) for url in left_this_machine), left_this_machine
