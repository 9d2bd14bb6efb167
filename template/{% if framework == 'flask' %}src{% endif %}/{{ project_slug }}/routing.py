"""URL converters shared by the blueprints."""

import re
from typing import Any

from flask import current_app
from werkzeug.routing import BaseConverter

from .problems import FieldError, InvalidRequestError

# Ids are the tables' 64-bit keys (database.id_type()).
MAX_ID = 2**63 - 1
ID_ARGUMENT = re.compile(r"<id:(\w+)>")
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


def document_id_parameters(spec: dict[str, Any]) -> dict[str, Any]:
    """Describe `<id:...>` path parameters in the OpenAPI document as the integers they are,
    and the 422 problem an invalid one gets."""
    for rule in current_app.url_map.iter_rules():
        names = set(ID_ARGUMENT.findall(rule.rule))
        if not names:
            continue
        path = ANY_ARGUMENT.sub(r"{\1}", rule.rule)
        for operation in spec.get("paths", {}).get(path, {}).values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in names:
                    parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
                    operation.setdefault("responses", {}).setdefault(
                        "422", {"description": "Validation error"}
                    )
    return spec
