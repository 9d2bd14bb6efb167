"""The OpenAPI document, the contract a client is generated from: the same in every flavour.

ContractAPI is the service's NinjaAPI. What it changes in Ninja's document, and why:

- an operation's id is its view function's name (`list_items`), not Ninja's module path;
- error responses are problems, sent as application/problem+json, and every operation with a
  body may answer 413 (MAX_REQUEST_BODY_BYTES is checked before the view runs);
- a form body read into one schema (`form: Form[LoginForm]`) is that schema, by reference;
- components hold only the schemas the document refers to (Ninja also keeps the models of
  query parameters it has already spread out into single parameters).
"""

from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from ninja import NinjaAPI
from ninja.openapi.schema import BODY_CONTENT_TYPES, REF_TEMPLATE, OpenAPISchema
from ninja.operation import Operation
from ninja.schema import NinjaGenerateJsonSchema
from ninja.types import DictStrAny
from pydantic import BaseModel

from .problems import PROBLEM_MEDIA_TYPE, Problem

FORM_MEDIA_TYPE = BODY_CONTENT_TYPES["form"]
SCHEMA_REF_PREFIX = REF_TEMPLATE.removesuffix("{model}")


def schema_ref(model: type[BaseModel]) -> DictStrAny:
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


class ContractAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        """The view function's name: the contract's operationIds are `read_item`, `login`..."""
        return operation.view_func.__name__

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: DictStrAny | None = None
    ) -> OpenAPISchema:
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        return ContractSchema(self, path_prefix)


class ContractSchema(OpenAPISchema):
    """Ninja's document, with each operation and the components as the module docstring says."""

    def __init__(self, api: NinjaAPI, path_prefix: str) -> None:
        super().__init__(api, path_prefix)
        referenced = self._referenced_schemas()
        for name in set(self.schemas) - referenced:
            del self.schemas[name]

    def operation_details(self, operation: Operation) -> DictStrAny:
        details = super().operation_details(operation)
        responses: dict[int, DictStrAny] = details["responses"]
        for status, response in responses.items():
            if status >= HTTPStatus.BAD_REQUEST and "content" in response:
                media = next(iter(response["content"].values()))
                response["content"] = {PROBLEM_MEDIA_TYPE: media}
        if "requestBody" in details:
            responses.setdefault(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE.value,
                {
                    "description": HTTPStatus.REQUEST_ENTITY_TOO_LARGE.phrase,
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": schema_ref(Problem)}},
                },
            )
            form = _form_schema(operation)
            content = details["requestBody"]["content"]
            if form is not None and FORM_MEDIA_TYPE in content:
                self._add_component(form)
                content[FORM_MEDIA_TYPE]["schema"] = schema_ref(form)
        return details

    def _add_component(self, model: type[BaseModel]) -> None:
        schema = model.model_json_schema(
            ref_template=REF_TEMPLATE, schema_generator=NinjaGenerateJsonSchema
        )
        self.add_schema_definitions({**schema.pop("$defs", {}), model.__name__: schema})

    def _referenced_schemas(self) -> set[str]:
        """The component schemas the paths refer to, directly or through other schemas."""
        referenced: set[str] = set()
        pending = list(_refs(self["paths"]))
        while pending:
            name = pending.pop()
            if name not in referenced:
                referenced.add(name)
                pending.extend(_refs(self.schemas[name]))
        return referenced


def _form_schema(operation: Operation) -> type[BaseModel] | None:
    """The schema of a form body read into a single parameter, if the operation has one."""
    for model in operation.models:
        if model.__ninja_param_source__ == "form" and len(model.model_fields) == 1:
            annotation = next(iter(model.model_fields.values())).annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                return annotation
    return None


def _refs(value: Any) -> Iterator[str]:
    """The names of the component schemas that a part of the document refers to."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF_PREFIX):
            yield ref.removeprefix(SCHEMA_REF_PREFIX)
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)
