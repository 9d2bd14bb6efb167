"""The part of an OpenAPI document that a client generator reads, the same in every flavour.

`contract_view` keeps, for each operation, its operationId, tags, parameters, request body,
responses and security, and every component schema and security scheme; it drops prose
(summaries, descriptions, titles), examples and the `info` block (title and version come from
the project). The three flavours must give the same view for the same auth answer: the files
`openapi-jwt.json` and `openapi-none.json` beside this module hold it, and
`uv run python -m tests.contract.openapi_view FILE` prints the view of a document, to compare
or to update them when the API itself changes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REFERENCES = Path(__file__).parent
# Keys that are prose or examples, wherever they appear in the document, except as the names of
# properties (a schema may have a property called "title").
PROSE = {"summary", "description", "title", "example", "examples", "externalDocs"}
OPERATION_KEYS = ("operationId", "tags", "parameters", "requestBody", "responses", "security")


def _without_prose(value: Any, *, property_names: bool = False) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_prose(item, property_names=key == "properties" and not property_names)
            for key, item in sorted(value.items())
            if property_names or key not in PROSE
        }
    if isinstance(value, list):
        return [_without_prose(item) for item in value]
    return value


def contract_view(document: dict[str, Any]) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue  # path-level parameters or servers: none in this API
            view = {key: operation[key] for key in OPERATION_KEYS if key in operation}
            view["parameters"] = sorted(
                view.get("parameters", []), key=lambda parameter: parameter["name"]
            )
            operations[f"{method.upper()} {path}"] = _without_prose(view)
    components = document.get("components", {})
    return {
        "openapi": document.get("openapi"),
        "operations": dict(sorted(operations.items())),
        "schemas": _without_prose(components.get("schemas", {})),
        "securitySchemes": _without_prose(components.get("securitySchemes", {})),
    }


def reference_view(auth: str) -> dict[str, Any]:
    view: dict[str, Any] = json.loads((REFERENCES / f"openapi-{auth}.json").read_text())
    return view


def differences(actual: Any, expected: Any, where: str = "") -> list[str]:
    """Where two views differ, one line each (for a readable assertion message)."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        found = []
        for key in sorted(set(actual) | set(expected), key=str):
            if key not in actual:
                found.append(f"{where}/{key}: missing")
            elif key not in expected:
                found.append(f"{where}/{key}: not in the reference")
            else:
                found += differences(actual[key], expected[key], f"{where}/{key}")
        return found
    if actual != expected:
        return [f"{where}: {json.dumps(actual)} != reference {json.dumps(expected)}"]
    return []


if __name__ == "__main__":
    print(json.dumps(contract_view(json.loads(Path(sys.argv[1]).read_text())), indent=2))
