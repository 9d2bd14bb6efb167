"""GraphQL at /graphql (the graphql option), checked black-box against each generated project's
dev server that has it, and fuzzed there with schemathesis's GraphQL support.

Written once for every flavour: it talks HTTP over a real socket and knows nothing of the code.
"""

from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    build_client_schema,
    build_schema,
    get_introspection_query,
    lexicographic_sort_schema,
    print_schema,
)

from ..conftest import FULL_VARIANTS, GeneratedProject, Live, on_variants
from .test_fuzz import fuzz, token_headers

GRAPHQL_VARIANTS = [name for name, answers in FULL_VARIANTS.items() if answers.get("graphql")]
CREATE = "mutation($name: String!) { createItem(input: {name: $name}) { id name } }"
READ = "query($id: ID!) { item(id: $id) { id name description } }"
# The check the fuzzing runs: errors with the contract's codes only (see the module).
HOOKS = Path(__file__).with_name("graphql_checks.py")


@pytest.fixture
def client(live: Live):
    with httpx.Client(base_url=live.url, timeout=10) as client:
        yield client


@pytest.fixture
def auth(live: Live) -> dict[str, str]:
    return token_headers(live.url) if live.project.auth == "jwt" else {}


def graphql(
    client: httpx.Client, headers: dict[str, str], query: str, **variables: object
) -> dict[str, Any]:
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def codes(body: dict[str, Any]) -> set[str]:
    return {error["extensions"]["code"] for error in body.get("errors", [])}


@on_variants(GRAPHQL_VARIANTS)
def test_the_served_schema_is_the_committed_schema(live: Live, client: httpx.Client) -> None:
    """In development introspection is on: what the server describes is schema.graphql."""
    response = client.post("/graphql", json={"query": get_introspection_query()})
    served = lexicographic_sort_schema(build_client_schema(response.json()["data"]))
    committed = build_schema((live.project.path / "schema.graphql").read_text())
    assert print_schema(served) == print_schema(lexicographic_sort_schema(committed))


@pytest.mark.parametrize("auth_mode", ["jwt", "none"])
def test_the_schema_is_byte_identical_in_every_flavour(shared_render: Any, auth_mode: str) -> None:
    """One schema: each project's own tests check that its code prints its schema.graphql."""
    schemas = {
        framework: (
            shared_render({"framework": framework, "auth": auth_mode, "graphql": True})
            / "schema.graphql"
        ).read_bytes()
        for framework in ("fastapi", "flask", "django")
    }
    assert len(set(schemas.values())) == 1, schemas
    assert (b"me: User!" in schemas["fastapi"]) == (auth_mode == "jwt")


@on_variants(GRAPHQL_VARIANTS)
def test_items_over_graphql(client: httpx.Client, auth: dict[str, str]) -> None:
    created = graphql(client, auth, CREATE, name="Lamp")["data"]["createItem"]
    assert created["name"] == "Lamp"
    item_id = created["id"]
    assert graphql(client, auth, READ, id=item_id)["data"]["item"]["name"] == "Lamp"
    updated = graphql(
        client,
        auth,
        'mutation($id: ID!) { updateItem(id: $id, input: {description: "Desk lamp"}) '
        "{ name description } }",
        id=item_id,
    )
    assert updated["data"] == {"updateItem": {"name": "Lamp", "description": "Desk lamp"}}
    page = graphql(client, auth, "{ items(limit: 1) { total limit offset items { id } } }")
    assert (page["data"]["items"]["limit"], len(page["data"]["items"]["items"])) == (1, 1)
    assert page["data"]["items"]["total"] >= 1
    deleted = graphql(client, auth, "mutation($id: ID!) { deleteItem(id: $id) }", id=item_id)
    assert deleted["data"] == {"deleteItem": item_id}
    assert codes(graphql(client, auth, READ, id=item_id)) == {"NOT_FOUND"}


@on_variants(GRAPHQL_VARIANTS)
def test_errors_carry_codes_clients_can_read(
    live: Live, client: httpx.Client, auth: dict[str, str]
) -> None:
    bad = graphql(client, auth, 'mutation { createItem(input: {name: ""}) { id } }')
    assert bad["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "name"}
    assert codes(graphql(client, auth, READ, id="abc")) == {"BAD_USER_INPUT"}
    assert codes(graphql(client, auth, READ, id="9223372036854775807")) == {"NOT_FOUND"}
    if live.project.auth == "jwt":
        assert codes(graphql(client, {}, "{ me { email } }")) == {"UNAUTHENTICATED"}
        expired = {"Authorization": "Bearer not.a.token"}
        assert codes(graphql(client, expired, "{ items { total } }")) == {"UNAUTHENTICATED"}
        item_id = graphql(client, auth, CREATE, name="Mine")["data"]["createItem"]["id"]
        other = token_headers(live.url)
        assert codes(graphql(client, other, READ, id=item_id)) == {"FORBIDDEN"}
    assert "Traceback" not in str(bad)


@on_variants(GRAPHQL_VARIANTS)
@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("{ " + " ".join(f"a{n}: items {{ total }}" for n in range(16)) + " }", "aliases"),
        ("{ items { total " + "total " * 1000 + "} }", "token"),
        ("{ items { items { owner { a { b { c { d } } } } } } }", "depth"),
        ('{ items(limit: "ten") { total } }', "Int"),
        ("{ items { total", "Syntax"),
    ],
    ids=["alias flood", "token flood", "deep nesting", "wrong type", "syntax"],
)
def test_hostile_queries_are_refused_before_they_run(
    client: httpx.Client, auth: dict[str, str], query: str, why: str
) -> None:
    body = graphql(client, auth, query)
    assert body.get("data") is None
    assert codes(body) == {"GRAPHQL_VALIDATION_FAILED"}
    assert any(why in error["message"] for error in body["errors"]), body


@on_variants(GRAPHQL_VARIANTS)
def test_one_operation_per_post(client: httpx.Client, auth: dict[str, str]) -> None:
    """No batches (a list of 100 operations is refused whole), no queries over GET."""
    batch = client.post("/graphql", json=[{"query": "{ items { total } }"}] * 100, headers=auth)
    assert batch.status_code == 400
    assert client.get("/graphql", params={"query": "{ items { total } }"}).status_code == 400


@on_variants(GRAPHQL_VARIANTS)
def test_the_graphiql_page_in_development(client: httpx.Client) -> None:
    page = client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


def fuzzed_variants() -> list[str]:
    """One variant of each framework, with users where the covering set has one."""
    chosen: dict[str, str] = {}
    for name in GRAPHQL_VARIANTS:
        framework = FULL_VARIANTS[name]["framework"]
        if framework not in chosen or FULL_VARIANTS[name]["auth"] == "jwt":
            chosen[framework] = name
    return list(chosen.values())


MINIMUM_CASES = 100


@on_variants(fuzzed_variants())
def test_schemathesis_finds_no_server_error_over_graphql(
    generated: GeneratedProject, tmp_path: Path
) -> None:
    log = fuzz(
        generated,
        tmp_path,
        "/graphql",
        "--checks",
        "graphql_contract_errors_only",
        "--max-examples",
        "25",
        minimum_cases=MINIMUM_CASES,
        env={"SCHEMATHESIS_HOOKS": str(HOOKS)},
    )
    assert "graphql.unexpected_error" not in log
