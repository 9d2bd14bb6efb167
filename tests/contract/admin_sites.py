"""Where each flavour's admin library (the `admin` option) puts its pages, and how its forms are
posted: what the contract suite and the browser test need to use the admin as a person does."""

import re
from dataclasses import dataclass

from ..conftest import FULL_VARIANTS

ADMIN_VARIANTS = [name for name, answers in FULL_VARIANTS.items() if answers.get("admin")]

HIDDEN_INPUT = re.compile(r"<input\b[^>]*\btype=\"hidden\"[^>]*>")
INPUT_ATTRIBUTE = re.compile(r'\b(name|value)="([^"]*)"')


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of a page's forms (the CSRF token), as a browser posts them back."""
    fields = {}
    for tag in HIDDEN_INPUT.findall(page):
        attributes = dict(INPUT_ATTRIBUTE.findall(tag))
        if "name" in attributes:
            fields[attributes["name"]] = attributes.get("value", "")
    return fields


@dataclass(frozen=True)
class AdminSite:
    sign_in: str
    sign_out: str
    sign_out_method: str
    users: str
    search: str  # the users page's search parameter
    deactivate_method: str
    deactivate_path: str
    deactivate_fields: dict[str, str]  # {pk} stands for the user's id

    def deactivation(self, pk: int) -> tuple[str, str, dict[str, str]]:
        """How the page deactivates a user: method, path and fields (a query for a GET)."""
        fields = {name: value.format(pk=pk) for name, value in self.deactivate_fields.items()}
        return self.deactivate_method, self.deactivate_path, fields


ADMIN_SITES = {
    # Django's admin: actions post the list's form.
    "django": AdminSite(
        sign_in="/admin/login/",
        sign_out="/admin/logout/",
        sign_out_method="POST",
        users="/admin/users/user/",
        search="q",
        deactivate_method="POST",
        deactivate_path="/admin/users/user/",
        deactivate_fields={"action": "deactivate", "_selected_action": "{pk}"},
    ),
    # SQLAdmin: actions are links.
    "fastapi": AdminSite(
        sign_in="/admin/login",
        sign_out="/admin/logout",
        sign_out_method="GET",
        users="/admin/user/list",
        search="search",
        deactivate_method="GET",
        deactivate_path="/admin/user/action/deactivate",
        deactivate_fields={"pks": "{pk}"},
    ),
    # Flask-Admin: actions post the list's form.
    "flask": AdminSite(
        sign_in="/admin/login/",
        sign_out="/admin/login/out",
        sign_out_method="POST",
        users="/admin/users/",
        search="search",
        deactivate_method="POST",
        deactivate_path="/admin/users/action/",
        deactivate_fields={"action": "deactivate", "rowid": "{pk}"},
    ),
}
