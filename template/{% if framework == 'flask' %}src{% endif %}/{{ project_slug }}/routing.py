"""URL converters shared by the blueprints, and what the OpenAPI document says of the routes."""

import re
from collections.abc import Iterator
from typing import Any

from flask import current_app
from werkzeug.routing import BaseConverter, Rule

from .problems import FieldError, InvalidRequestError

# Ids are the tables' 64-bit keys (database.id_type()).
MAX_ID = 2**63 - 1
ID_ARGUMENT = re.compile(r"<(?:digits_)?id:(\w+)>")
ANY_ARGUMENT = re.compile(r"<(?:[^<:>]+:)?([^<>]+)>")


class IdConverter(BaseConverter):
    """`<id:item_id>`: a positive 64-bit id; anything else in its place is a 422 problem.

    Flask's own `<int:...>` answers 404 for `abc` or `-1` and passes 0 or 2**64 on to the
    database; the API treats them all as invalid input, like a bad query parameter.
    """

    regex = r"[^/]+"

    def to_python(self, value: str) -> int:
        if value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID:
            return int(value)
        detail = f"Must be an integer from 1 to {MAX_ID}."
        raise InvalidRequestError([FieldError(location="path", field="id", detail=detail)])

    def to_url(self, value: int) -> str:
        return str(value)


class DigitsIdConverter(IdConverter):
    """`<digits_id:user_id>`: the same id, where a route beside it has a word in its place
    (`/users/me`). Only digits match, so `PATCH /users/me` is the 405 of the route that is
    there, not a 422 of this one, and another word is a 404 (as in the other flavours)."""

    regex = r"[0-9]+"


def _documented_operations(spec: dict[str, Any]) -> Iterator[tuple[Rule, dict[str, Any]]]:
    """Each operation of the document, with the URL rule that serves it."""
    for rule in current_app.url_map.iter_rules():
        operations = spec.get("paths", {}).get(ANY_ARGUMENT.sub(r"{\1}", rule.rule), {})
        for method in sorted(rule.methods or ()):
            if method.lower() in operations:
                yield rule, operations[method.lower()]


def document_id_parameters(spec: dict[str, Any]) -> dict[str, Any]:
    """Describe `<id:...>` path parameters in the OpenAPI document as the integers they are,
    and the 422 problem an invalid one gets."""
    for rule, operation in _documented_operations(spec):
        names = set(ID_ARGUMENT.findall(rule.rule))
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] in names:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
                operation.setdefault("responses", {}).setdefault(
                    "422", {"description": "Validation error"}
                )
    return spec


def document_operation_ids(spec: dict[str, Any]) -> dict[str, Any]:
    """Name every operation after its view function (list_items, read_item, login, ...): the
    names are the same in every flavour of this API, so a client generated from the document
    gets short, stable method names. A new view's name is its operationId: make it a verb."""
    for rule, operation in _documented_operations(spec):
        operation["operationId"] = current_app.view_functions[rule.endpoint].__name__
    return spec
