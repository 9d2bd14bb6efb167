"""URL converters shared by the blueprints."""

from werkzeug.routing import BaseConverter

from .problems import FieldError, InvalidRequestError

MAX_ID = 2**63 - 1


class IdConverter(BaseConverter):
    """`<id:item_id>`: a positive 64-bit id; anything else in its place is a 422 problem.

    Flask's own `<int:...>` answers 404 for `abc` or `-1` and passes 0 or 2**64 on to the
    database; the API treats them all as invalid input, like a bad query parameter.
    """

    regex = r"[^/]+"

    def to_python(self, value: str) -> int:
        if value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID:
            return int(value)
        raise InvalidRequestError(
            [FieldError(location="path", field="id", detail="Must be a positive 64-bit integer.")]
        )

    def to_url(self, value: int) -> str:
        return str(value)
