"""The HTTP contract of DESIGN.md, checked black-box against each generated project's dev server.

Written once for every flavour: it talks HTTP over a real socket and knows nothing of the code.
"""

import random
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from ..conftest import FULL_VARIANTS, JWT_VARIANTS, Live, on_variants
from ..harness import make_superuser
from .admin_sites import ADMIN_SITES, ADMIN_VARIANTS, hidden_fields

PROBLEM = "application/problem+json"


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert "type" in body
    return body


@pytest.fixture
def client(live: Live):
    with httpx.Client(base_url=live.url, timeout=10) as client:
        yield client


@pytest.fixture
def auth(live: Live, client: httpx.Client) -> dict[str, str]:
    """Headers for a fresh user, or none when the project has no authentication."""
    if live.project.auth == "none":
        return {}
    email, password = unique_email(), "correct horse battery"
    response = client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    response = client.post("/api/v1/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_health(live: Live, client: httpx.Client) -> None:
    response = client.get("/health/live")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    checks = {"database": "ok"}
    if live.project.answers.get("celery"):
        checks["broker"] = "ok"
    if live.project.answers.get("redis"):
        checks["cache"] = "ok"
    assert ready.json() == {"status": "ok", "checks": checks}


def test_openapi_and_docs(live: Live, client: httpx.Client) -> None:
    document = client.get("/openapi.json")
    assert document.status_code == 200
    paths = set(document.json()["paths"])
    assert {"/health/live", "/health/ready", "/api/v1/items", "/api/v1/items/{item_id}"} <= paths
    auth_paths = {"/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/users/me"}
    if live.project.auth == "jwt":
        assert auth_paths <= paths
    else:
        assert not auth_paths & paths
    assert client.get("/docs").status_code == 200


def test_unknown_path_is_a_404_problem(client: httpx.Client) -> None:
    assert_problem(client.get("/api/v1/nothing-here"), 404)


def test_no_metrics_without_a_metrics_token(client: httpx.Client) -> None:
    """The dev server runs with METRICS_TOKEN empty, as .env.example leaves it: no /metrics (each
    project's own tests cover it with a token), and it is not in the OpenAPI document."""
    assert_problem(client.get("/metrics"), 404)
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_items_crud_and_paging(live: Live, client: httpx.Client, auth: dict[str, str]) -> None:
    created = client.post(
        "/api/v1/items", json={"name": "Lamp", "description": "Desk lamp"}, headers=auth
    )
    assert created.status_code == 201, created.text
    item = created.json()
    expected_fields = {"id", "name", "description", "created_at", "updated_at"}
    if live.project.auth == "jwt":
        expected_fields.add("owner_id")
    assert set(item) == expected_fields
    url = f"/api/v1/items/{item['id']}"

    assert client.get(url, headers=auth).json() == item
    patched = client.patch(url, json={"name": "Floor lamp"}, headers=auth)
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["description"]) == ("Floor lamp", "Desk lamp")

    page = client.get("/api/v1/items", params={"limit": 1, "offset": 0}, headers=auth)
    assert page.status_code == 200
    body = page.json()
    assert set(body) == {"items", "total", "limit", "offset"}
    assert (body["limit"], body["offset"], len(body["items"])) == (1, 0, 1)
    assert body["total"] >= 1

    deleted = client.delete(url, headers=auth)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert_problem(client.get(url, headers=auth), 404)


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}])
def test_bad_paging_is_a_422_problem(
    client: httpx.Client, auth: dict[str, str], query: dict[str, object]
) -> None:
    body = assert_problem(client.get("/api/v1/items", params=query, headers=auth), 422)
    assert body["errors"]


@pytest.mark.parametrize(
    "payload", [{}, {"name": ""}, {"name": "x" * 201}, {"name": "ok", "id": 7}, {"name": ["list"]}]
)
def test_invalid_item_is_a_422_problem(
    client: httpx.Client, auth: dict[str, str], payload: dict[str, object]
) -> None:
    body = assert_problem(client.post("/api/v1/items", json=payload, headers=auth), 422)
    errors = body["errors"]
    assert isinstance(errors, list)
    assert errors
    assert {"location", "field", "detail"} <= set(errors[0])


def test_malformed_json_is_a_422_problem(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/items",
        content=b'{"name": ',
        headers={**auth, "content-type": "application/json"},
    )
    assert_problem(response, 422)


# --- hardening --------------------------------------------------------------------------------

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


def test_responses_carry_the_security_headers(client: httpx.Client) -> None:
    live = client.get("/health/live")
    api = client.get("/api/v1/items")
    for response in (live, api):
        assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
        # The dev server runs in development: HSTS belongs to production behind TLS only.
        assert "strict-transport-security" not in response.headers
    assert api.headers["cache-control"] == "no-store"


def test_a_body_over_the_limit_is_a_413_problem(client: httpx.Client, auth: dict[str, str]) -> None:
    payload = {"name": "x", "description": "y" * (2 * 1024 * 1024)}
    response = client.post("/api/v1/items", json=payload, headers=auth)
    assert_problem(response, 413)
    assert response.headers["x-content-type-options"] == "nosniff"


def test_cors_is_closed_by_default(client: httpx.Client) -> None:
    preflight = client.options(
        "/api/v1/items",
        headers={"origin": "https://app.example.com", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


# --- authentication (jwt projects only) -----------------------------------------------------


# These run only against projects generated with auth=jwt (not skipped elsewhere: never collected).
jwt_only = on_variants(JWT_VARIANTS)
with_admin = on_variants(ADMIN_VARIANTS)
without_admin = on_variants([name for name in FULL_VARIANTS if name not in ADMIN_VARIANTS])


@jwt_only
def test_register_and_me(client: httpx.Client) -> None:
    email = unique_email()
    registered = client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": "long enough", "full_name": "Ada"},
    )
    assert registered.status_code == 201
    user = registered.json()
    assert set(user) == {
        "id",
        "email",
        "full_name",
        "is_active",
        "is_superuser",
        "email_verified",
        "created_at",
    }
    assert (user["is_active"], user["is_superuser"]) == (True, False)
    token = client.post("/api/v1/auth/token", data={"username": email, "password": "long enough"})
    assert token.status_code == 200
    body = token.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] > 0
    me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == user


@jwt_only
def test_duplicate_registration_is_409(client: httpx.Client) -> None:
    email = unique_email()
    payload = {"email": email, "password": "long enough"}
    assert client.post("/api/v1/auth/register", json=payload).status_code == 201
    payload["email"] = email.upper()
    assert_problem(client.post("/api/v1/auth/register", json=payload), 409)


@jwt_only
def test_protected_routes_need_a_token(client: httpx.Client) -> None:
    for method, path in [
        ("GET", "/api/v1/users/me"),
        ("GET", "/api/v1/items"),
        ("POST", "/api/v1/items"),
    ]:
        response = client.request(method, path, json={"name": "x"})
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    assert_problem(client.get("/api/v1/users/me", headers={"Authorization": "Bearer junk"}), 401)


@jwt_only
def test_other_users_items_are_403(client: httpx.Client, auth: dict[str, str]) -> None:
    item = client.post("/api/v1/items", json={"name": "Mine"}, headers=auth).json()
    email = unique_email()
    client.post("/api/v1/auth/register", json={"email": email, "password": "long enough"})
    token = client.post("/api/v1/auth/token", data={"username": email, "password": "long enough"})
    other = {"Authorization": f"Bearer {token.json()['access_token']}"}
    url = f"/api/v1/items/{item['id']}"
    assert_problem(client.get(url, headers=other), 403)
    assert_problem(client.patch(url, json={"name": "Stolen"}, headers=other), 403)
    assert_problem(client.delete(url, headers=other), 403)
    assert client.get(url, headers=auth).json()["name"] == "Mine"


@jwt_only
def test_a_session_refreshes_rotates_and_ends(client: httpx.Client) -> None:
    email, password = unique_email(), "correct horse battery"
    client.post("/api/v1/auth/register", json={"email": email, "password": password})

    def tokens() -> dict[str, Any]:
        response = client.post("/api/v1/auth/token", data={"username": email, "password": password})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["refresh_expires_in"] > body["expires_in"] > 0
        return body

    def bearer(body: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {body['access_token']}"}

    def refresh(body: dict[str, Any]) -> httpx.Response:
        return client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})

    first = tokens()
    response = refresh(first)
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    me = client.get("/api/v1/users/me", headers=bearer(second))
    assert me.json()["email"] == email
    # The first token again: stolen, or replayed. Its whole session ends.
    assert_problem(refresh(first), 401)
    assert_problem(refresh(second), 401)

    third = tokens()
    logout = client.post("/api/v1/auth/logout", json={"refresh_token": third["refresh_token"]})
    assert logout.status_code == 204
    assert_problem(refresh(third), 401)

    # The same token sent by several clients at once (the server's processes and the database
    # see them together): exactly one gets new tokens, and then the session is over for all.
    fourth = tokens()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: refresh(fourth), range(8)))
    assert sorted(answer.status_code for answer in answers) == [200] + [401] * 7
    winner = next(answer.json() for answer in answers if answer.status_code == 200)
    assert_problem(refresh(winner), 401)

    # A new password ends every session, its access tokens too; the answer is a new one.
    fifth, sixth = tokens(), tokens()
    change = {"current_password": password, "new_password": "a new horse battery"}
    changed = client.post("/api/v1/users/me/password", json=change, headers=bearer(fifth))
    assert changed.status_code == 200, changed.text
    for old in (fifth, sixth):
        assert_problem(client.get("/api/v1/users/me", headers=bearer(old)), 401)
        assert_problem(refresh(old), 401)
    assert client.get("/api/v1/users/me", headers=bearer(changed.json())).status_code == 200


RESET_ROUNDS = 40
RESET_LINK = re.compile(r"reset-password#token=([A-Za-z0-9_.-]+)")
VERIFY_LINK = re.compile(r"verify-email#token=([A-Za-z0-9_.-]+)")


def answer_time_overlap(first: list[float], second: list[float]) -> float:
    """How often an answer of `first` took longer than one of `second`, over every pair (ties
    count half): 0.5 when the two distributions cannot be told apart, 0 or 1 when they do not
    overlap at all (the Mann-Whitney U statistic, as a fraction)."""
    wins = sum((a > b) + 0.5 * (a == b) for a in first for b in second)
    return wins / (len(first) * len(second))


def emailed_token(live: Live, email: str, link: re.Pattern[str], timeout: float = 20) -> str:
    """The token of the first link of this kind the server emailed to `email`: without
    SMTP_HOST, in development, an email is written to the server's log, its text included."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in live.server.log().splitlines():
            if email in line and (found := link.search(line)):
                return found.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no such link for {email} in the log:\n{live.server.log()[-4000:]}")


# The timing of the two answers depends on the framework and on whether Celery sends the emails
# (a task for every address) or the process does (after the answer, for an account only), not on
# the database or the broker: each framework with and without Celery, not every JWT variant.
RESET_TIMING_VARIANTS = list(
    {
        (answers["framework"], bool(answers.get("celery"))): name
        for name, answers in reversed(FULL_VARIANTS.items())
        if name in JWT_VARIANTS
    }.values()
)


@on_variants(RESET_TIMING_VARIANTS)
def test_a_password_reset_tells_nothing_and_its_link_works_once(
    live: Live, client: httpx.Client
) -> None:
    email, password = unique_email(), "correct horse battery"
    client.post("/api/v1/auth/register", json={"email": email, "password": password})
    before = log_in(client, email, password)

    # The same answer, in the same time, for an account's address and for anyone else's: the
    # two orders alternate, and each request waits for the email work of the one before.
    times: dict[bool, list[float]] = {True: [], False: []}
    bodies = set()
    for round_number in range(RESET_ROUNDS):
        order = (True, False) if round_number % 2 else (False, True)
        for known in order:
            address = email if known else unique_email()
            started = time.perf_counter()
            answer = client.post("/api/v1/auth/password-reset", json={"email": address})
            times[known].append(time.perf_counter() - started)
            assert answer.status_code == 202, answer.text
            bodies.add(answer.content)
            time.sleep(0.02)
    assert len(bodies) == 1
    overlap = answer_time_overlap(times[True], times[False])
    medians = {known: sorted(values)[RESET_ROUNDS // 2] * 1000 for known, values in times.items()}
    assert 0.2 < overlap < 0.8, f"P(account slower) = {overlap:.2f}, medians (ms) {medians}"

    if live.project.answers.get("celery"):
        return  # a worker sends the email there; no worker runs beside this dev server
    token = emailed_token(live, email, RESET_LINK)
    new_password = "a reset horse battery"
    reset = {"token": token, "new_password": new_password}
    done = client.post("/api/v1/auth/password-reset/confirm", json=reset)
    assert (done.status_code, done.content) == (204, b""), done.text
    assert_problem(client.get("/api/v1/users/me", headers=before), 401)
    login = {"username": email, "password": password}
    assert_problem(client.post("/api/v1/auth/token", data=login), 401)
    assert client.get("/api/v1/users/me", headers=log_in(client, email, new_password)).is_success
    again = client.post(
        "/api/v1/auth/password-reset/confirm", json=reset | {"new_password": password}
    )
    assert_problem(again, 401)


@jwt_only
def test_the_link_sent_at_registration_verifies_the_address(
    live: Live, client: httpx.Client
) -> None:
    email, password = unique_email(), "correct horse battery"
    registered = client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert registered.status_code == 201, registered.text
    assert registered.json()["email_verified"] is False
    # Asking for a new link is answered as a password reset is: alike for every address.
    stranger = unique_email()
    answers = [
        client.post("/api/v1/auth/verify-email/resend", json={"email": email}),
        client.post("/api/v1/auth/verify-email/resend", json={"email": stranger}),
        client.post("/api/v1/auth/password-reset", json={"email": stranger}),
    ]
    assert {answer.status_code for answer in answers} == {202}
    assert len({answer.content for answer in answers}) == 1

    if live.project.answers.get("celery"):
        return  # a worker sends the email there; no worker runs beside this dev server
    token = emailed_token(live, email, VERIFY_LINK)
    for _ in range(2):  # the second time changes nothing
        done = client.post("/api/v1/auth/verify-email", json={"token": token})
        assert (done.status_code, done.content) == (204, b""), done.text
    me = client.get("/api/v1/users/me", headers=log_in(client, email, password))
    assert me.json()["email_verified"] is True
    assert_problem(client.post("/api/v1/auth/verify-email", json={"token": "x.y.z"}), 401)


def log_in(client: httpx.Client, email: str, password: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@jwt_only
def test_a_superuser_from_the_documented_command_manages_accounts(
    live: Live, client: httpx.Client
) -> None:
    password = "correct horse battery"
    admin_email, ada_email = unique_email(), unique_email()
    make_superuser(live.project.path, live.project.framework, admin_email, password)
    admin = log_in(client, admin_email, password)
    me = client.get("/api/v1/users/me", headers=admin).json()
    assert (me["email"], me["is_superuser"], me["is_active"]) == (admin_email, True, True)

    registered = client.post(
        "/api/v1/auth/register", json={"email": ada_email, "password": password}
    ).json()
    assert registered["is_superuser"] is False
    ada = log_in(client, ada_email, password)
    url = f"/api/v1/users/{registered['id']}"

    # Ada is not a superuser: 403 on every management route, before her body is validated.
    for response in (
        client.get("/api/v1/users", headers=ada),
        client.get(url, headers=ada),
        client.patch(url, json={"is_superuser": True}, headers=ada),
        client.patch(url, json={"is_active": None}, headers=ada),
    ):
        assert_problem(response, 403)
    assert_problem(client.get("/api/v1/users"), 401)

    # The superuser pages through every account, oldest first.
    page = client.get("/api/v1/users", params={"limit": 100}, headers=admin)
    assert page.status_code == 200, page.text
    body = page.json()
    assert set(body) == {"items", "total", "limit", "offset"}
    assert body["total"] >= 2
    ids = [user["id"] for user in body["items"]]
    assert ids == sorted(ids)
    # Ada is on the last page (later tests register more users, never fewer).
    last = client.get(
        "/api/v1/users", params={"limit": 100, "offset": max(body["total"] - 100, 0)}, headers=admin
    )
    assert ada_email in [user["email"] for user in last.json()["items"]]
    assert client.get(url, headers=admin).json() == registered

    # Deactivated: Ada's token stops working at once, and her login fails as a wrong one does.
    deactivated = client.patch(url, json={"is_active": False}, headers=admin)
    assert deactivated.status_code == 200, deactivated.text
    assert deactivated.json()["is_active"] is False
    assert_problem(client.get("/api/v1/users/me", headers=ada), 401)
    refused = client.post("/api/v1/auth/token", data={"username": ada_email, "password": password})
    wrong = client.post("/api/v1/auth/token", data={"username": ada_email, "password": "wrong!!"})
    assert_problem(refused, 401)
    assert refused.json() == wrong.json()
    # Reactivated: she logs in again.
    assert client.patch(url, json={"is_active": True}, headers=admin).json()["is_active"] is True
    log_in(client, ada_email, password)

    # Nobody deactivates or demotes themselves; an unknown account is a 404.
    own = f"/api/v1/users/{me['id']}"
    assert_problem(client.patch(own, json={"is_active": False}, headers=admin), 409)
    assert_problem(client.patch(own, json={"is_superuser": False}, headers=admin), 409)
    unknown = 2**62
    assert_problem(client.get(f"/api/v1/users/{unknown}", headers=admin), 404)
    assert_problem(client.patch(url, json={"is_active": "maybe"}, headers=admin), 422)


@without_admin
def test_no_admin_site_without_the_option(client: httpx.Client) -> None:
    """Off by default: nothing answers at /admin/ but the 404 problem of any unknown path."""
    for path in ("/admin/", "/admin/login/", "/admin/login"):
        assert_problem(client.get(path), 404)


@with_admin
def test_the_admin_site_lets_in_a_superuser_only(live: Live, client: httpx.Client) -> None:
    """Signed in as a browser does it (the form's hidden CSRF token, the Origin header the page's
    Referrer-Policy lets a browser send), a superuser from the documented command finds a user
    and deactivates them, which ends their API sessions, then signs out; nobody else gets past
    the sign-in page, and the admin is not part of the API's document."""
    site = ADMIN_SITES[live.project.framework]
    for page in ("/admin/", site.users):
        response = client.get(page)
        assert response.status_code == 302, page
        assert urlsplit(response.headers["location"]).path == site.sign_in, page
    assert not [path for path in client.get("/openapi.json").json()["paths"] if "admin" in path]
    sign_in_page = client.get(site.sign_in)
    assert sign_in_page.status_code == 200
    assert sign_in_page.headers["content-type"].startswith("text/html")
    # A browser sends `Origin: null` with a form posted from a no-referrer page (Django's CSRF
    # check refuses it), and the page's origin otherwise.
    no_referrer = sign_in_page.headers["referrer-policy"] == "no-referrer"
    browser_headers = {"Origin": "null" if no_referrer else live.url}

    root, password = unique_email(), "correct horse battery"
    make_superuser(live.project.path, live.project.framework, root, password)
    ada = unique_email()
    registered = client.post("/api/v1/auth/register", json={"email": ada, "password": password})
    assert registered.status_code == 201, registered.text
    ada_headers = log_in(client, ada, password)

    def send(
        browser: httpx.Client, method: str, url: str, form: dict[str, str], page: str
    ) -> httpx.Response:
        """A link followed, or a form posted from `page`, as a browser does."""
        if method == "GET":
            return browser.get(url, params=form)
        return browser.post(url, data=hidden_fields(page) | form, headers=browser_headers)

    def sign_in(browser: httpx.Client, email: str) -> httpx.Response:
        page = browser.get(site.sign_in).text
        return send(browser, "POST", site.sign_in, {"username": email, "password": password}, page)

    with httpx.Client(base_url=live.url, timeout=10) as browser:
        assert sign_in(browser, ada).status_code in {200, 400}  # the form again: no superuser
        assert browser.get("/admin/").status_code == 302
        assert sign_in(browser, root).status_code == 302
        users = browser.get(site.users, params={site.search: ada})
        assert users.status_code == 200
        assert ada in users.text
        response = send(browser, *site.deactivation(registered.json()["id"]), users.text)
        assert response.status_code == 302, response.text
        assert browser.get(site.users).status_code == 200
        send(browser, site.sign_out_method, site.sign_out, {}, users.text)
        assert browser.get("/admin/").status_code == 302
    assert_problem(client.get("/api/v1/users/me", headers=ada_headers), 401)


@jwt_only
def test_login_is_rate_limited(live: Live, client: httpx.Client) -> None:
    """The wrong passwords come from a loopback address of their own: the counts are per
    address and per fixed window, and the failures of earlier tests from 127.0.0.1 may have
    opened a window that ends during the burst (ten failures, then a 429, would not hold)."""
    email = unique_email()
    client.post("/api/v1/auth/register", json={"email": email, "password": "long enough"})
    source = ".".join(str(random.randint(1, 254)) for _ in range(3))
    transport = httpx.HTTPTransport(local_address=f"127.{source}")
    statuses = []
    with httpx.Client(base_url=live.url, timeout=10, transport=transport) as guesser:
        for _ in range(11):
            response = guesser.post(
                "/api/v1/auth/token", data={"username": email, "password": "wrong"}
            )
            statuses.append(response.status_code)
    # Ten failures a minute are allowed from one address; the eleventh is refused.
    assert statuses == [401] * 10 + [429], statuses
    assert int(response.headers["retry-after"]) > 0
    assert_problem(response, 429)
