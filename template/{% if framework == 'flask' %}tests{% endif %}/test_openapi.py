"""The OpenAPI document and its UI describe the API as it behaves."""

from flask.testing import FlaskClient

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_the_document_lists_the_routes(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert {"/health/live", "/health/ready", "/api/v1/items", "/api/v1/items/{item_id}"} <= set(
        spec["paths"]
    )


def test_errors_are_documented_as_problems(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    create = spec["paths"]["/api/v1/items"]["post"]
    assert create["responses"]["422"]["content"] == PROBLEM
    assert spec["paths"]["/api/v1/items/{item_id}"]["get"]["responses"]["404"]["content"] == PROBLEM
    assert "Problem" in spec["components"]["schemas"]
    assert "HTTPError" not in spec["components"]["schemas"]


def test_ids_in_paths_are_documented_as_integers(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    for operation in spec["paths"]["/api/v1/items/{item_id}"].values():
        [parameter] = [p for p in operation["parameters"] if p["in"] == "path"]
        assert parameter["schema"]["type"] == "integer"
        assert parameter["schema"]["minimum"] == 1


def test_the_docs_page_is_served(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "/openapi.json" in response.text
