"""One API, one document: every flavour's dev server serves an OpenAPI document that is valid
(openapi-spec-validator), whose contract view (tests/contract/openapi_view.py: operationIds,
parameters, bodies, responses, schemas, security) is the reference of its auth answer, and from
which a real client generator (openapi-python-client) makes a client that works against it.
Equal views in every flavour mean a client generated from one works against all three."""

import importlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from ..conftest import Live, has_users, on_variants, one_each
from .openapi_view import contract_view, differences, reference_view

# A client is generated for each framework (with users: every operation).
CLIENT_VARIANTS = one_each("framework", where=has_users)
PASSWORD = "correct horse battery"
# The generated client connects from an address of its own: the contract tests' failed logins
# (from 127.0.0.1, counted per address) must not throttle its login.
CLIENT_ADDRESS = "127.0.0.20"


def own_address() -> dict[str, Any]:
    return {"transport": httpx.HTTPTransport(local_address=CLIENT_ADDRESS)}


def document_of(live: Live) -> dict[str, Any]:
    response = httpx.get(f"{live.url}/openapi.json", timeout=10)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def test_the_document_is_valid_and_the_same_in_every_flavour(live: Live) -> None:
    document = document_of(live)
    validate(document)
    found = differences(contract_view(document), reference_view(live.project.auth))
    assert found == [], "\n".join(found)


def test_the_contract_check_catches_a_renamed_operation() -> None:
    reference = reference_view("jwt")
    renamed = json.loads(json.dumps(reference))
    renamed["operations"]["GET /api/v1/items"]["operationId"] = "list_items_api_v1_items_get"
    renamed["schemas"]["Body_token"] = renamed["schemas"].pop("LoginForm")
    assert differences(renamed, reference) == [
        '/operations/GET /api/v1/items/operationId: "list_items_api_v1_items_get" != reference '
        '"list_items"',
        "/schemas/Body_token: not in the reference",
        "/schemas/LoginForm: missing",
    ]


@pytest.fixture
def generated_client(live: Live, tmp_path: Path) -> Iterator[Any]:
    """The package openapi-python-client generates from the live document, imported."""
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document_of(live)))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"package_name_override": "service_client", "post_hooks": []}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / "service_client"),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Generation must not have had to skip anything it could not understand.
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("service_client")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == "service_client"]:
            del sys.modules[name]


@on_variants(CLIENT_VARIANTS)
def test_a_generated_client_works_against_the_service(live: Live, generated_client: Any) -> None:
    api = importlib.import_module("service_client.api")
    models = importlib.import_module("service_client.models")
    register = importlib.import_module("service_client.api.auth.register")
    login = importlib.import_module("service_client.api.auth.login")
    read_current_user = importlib.import_module("service_client.api.users.read_current_user")
    items = {
        name: importlib.import_module(f"service_client.api.items.{name}")
        for name in ("list_items", "create_item", "read_item", "update_item", "delete_item")
    }
    assert api is not None
    anonymous = generated_client.Client(base_url=live.url, httpx_args=own_address())
    email = f"client-{uuid.uuid4().hex[:12]}@example.com"
    user = register.sync(client=anonymous, body=models.UserRegister(email=email, password=PASSWORD))
    assert isinstance(user, models.UserRead), user
    token = login.sync(client=anonymous, body=models.LoginForm(username=email, password=PASSWORD))
    assert isinstance(token, models.AccessToken), token
    signed_in = generated_client.AuthenticatedClient(
        base_url=live.url, token=token.access_token, httpx_args=own_address()
    )
    assert read_current_user.sync(client=signed_in).email == email

    created = items["create_item"].sync(client=signed_in, body=models.ItemCreate(name="Lamp"))
    assert isinstance(created, models.ItemRead), created
    assert created.owner_id == user.id
    read = items["read_item"].sync(client=signed_in, item_id=created.id)
    assert (read.id, read.name) == (created.id, "Lamp")
    page = items["list_items"].sync(client=signed_in, limit=10, offset=0)
    assert isinstance(page, models.ItemPage), page
    assert [item.id for item in page.items] == [created.id]
    renamed = items["update_item"].sync(
        client=signed_in, item_id=created.id, body=models.ItemUpdate(name="Desk lamp")
    )
    assert renamed.name == "Desk lamp"
    deleted = items["delete_item"].sync_detailed(client=signed_in, item_id=created.id)
    assert deleted.status_code == 204
    # Errors come back as the documented Problem model.
    missing = items["read_item"].sync(client=signed_in, item_id=created.id)
    assert isinstance(missing, models.Problem), missing
    assert missing.status == 404
    refused = read_current_user.sync(client=anonymous)
    assert isinstance(refused, models.Problem), refused
    assert refused.status == 401
