"""The admin site in a real browser: Debian's Chromium, driven by Playwright, against each
flavour's dev server (one variant with the `admin` option per framework).

A superuser signs in through the page's own form (Django's CSRF check wants the token and the
page's origin, which a browser sends only if the page's Referrer-Policy lets it), and a page on
another site cannot make the signed-in browser act in the admin, nor sign it out: the session
cookie is SameSite (Strict; Flask-Admin's Lax), so the browser does not send it with the other
site's request (SQLAdmin's action links have no other defence; Django's and Flask-Admin's forms
also want their CSRF token). Nothing the admin's pages load may leave this machine.
"""

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Browser

from ..conftest import Live, keep_on_this_machine, on_variants, one_each
from ..harness import make_superuser
from .admin_sites import ADMIN_SITES

BROWSER_VARIANTS = one_each("framework", where=lambda answers: bool(answers.get("admin")))
PASSWORD = "correct horse battery"


@contextmanager
def another_site(page: str) -> Iterator[str]:
    """Serve `page` from http://localhost:<port>/: another site than the dev server's
    127.0.0.1 for the browser, on this machine."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def self_submitting_form(method: str, action: str, fields: dict[str, str]) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields.items()
    )
    return (
        f'<!doctype html><form method="{method}" action="{escape(action)}">{inputs}</form>'
        "<script>document.forms[0].submit()</script>"
    )


@on_variants(BROWSER_VARIANTS)
def test_a_browser_signs_in_and_another_site_cannot_act_for_it(
    live: Live, chromium: Browser
) -> None:
    site = ADMIN_SITES[live.project.framework]
    root, ada = (f"{who}-{uuid.uuid4().hex[:12]}@example.com" for who in ("root", "ada"))
    make_superuser(live.project.path, live.project.framework, root, PASSWORD)
    with httpx.Client(base_url=live.url, timeout=10) as client:
        registered = client.post("/api/v1/auth/register", json={"email": ada, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        token = client.post("/api/v1/auth/token", data={"username": ada, "password": PASSWORD})
        ada_headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    context = chromium.new_context(base_url=live.url)
    left_this_machine = keep_on_this_machine(context)
    page = context.new_page()
    try:
        page.goto("/admin/")
        assert urlsplit(page.url).path == site.sign_in
        page.fill("input[name=username]", root)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("[type=submit]")
        assert urlsplit(page.url).path.startswith("/admin/")
        assert urlsplit(page.url).path != site.sign_in, page.content()
        page.goto(site.users)
        assert ada in page.content()

        # Another site's page submits the deactivation of Ada's account from this browser.
        method, path, fields = site.deactivation(registered.json()["id"])
        with another_site(self_submitting_form(method, live.url + path, fields)) as url:
            attack = context.new_page()
            attack.goto(url)
            attack.wait_for_url(f"{live.url}/**")
            attack.wait_for_load_state()
            attack.close()
        with httpx.Client(base_url=live.url, timeout=10) as client:
            assert client.get("/api/v1/users/me", headers=ada_headers).status_code == 200

        # The browser's own session still works.
        page.goto(site.users)
        assert ada in page.content()
        assert left_this_machine == []
    finally:
        context.close()
