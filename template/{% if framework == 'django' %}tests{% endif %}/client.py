"""The HTTP client the API tests talk to the app with. Every flavour's tests name theirs `Client`
and call it the same way (httpx's `json=` and `params=`), so one test reads the same in each.

It is Django's test client, so each request still runs in the test's transaction.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.test import Client as DjangoClient

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response


def _with_json(kwargs: dict[str, Any], json: object) -> dict[str, Any]:
    """Django's arguments for a JSON body; none when `json` is None, as in httpx."""
    if json is None:
        return kwargs
    return kwargs | {"data": json, "content_type": "application/json"}


class Client(DjangoClient):
    def get(
        self, *args: Any, params: Mapping[str, object] | None = None, **kwargs: Any
    ) -> "Response":
        if params is not None:
            kwargs["query_params"] = params
        return super().get(*args, **kwargs)

    def post(self, *args: Any, json: object = None, **kwargs: Any) -> "Response":
        return super().post(*args, **_with_json(kwargs, json))

    def put(self, *args: Any, json: object = None, **kwargs: Any) -> "Response":
        return super().put(*args, **_with_json(kwargs, json))

    def patch(self, *args: Any, json: object = None, **kwargs: Any) -> "Response":
        return super().patch(*args, **_with_json(kwargs, json))
