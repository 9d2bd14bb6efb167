"""The documentation cannot drift: it names every question, choice and computed value of
copier.yml, repeats the README's commands verbatim, shows trees and diagrams of real renders, lists
the routes the contract suite calls, and builds as a MkDocs site with no warning."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .docs_pages import DIAGRAM_ANSWER_SETS, REGENERATE, render_pages
from .harness import (
    TEMPLATE_ROOT,
    choice_values,
    copier_config,
    documented_commands,
    questions,
    render,
)

DOCS = TEMPLATE_ROOT / "docs"
OPTIONS = (DOCS / "options.md").read_text()
README = TEMPLATE_ROOT / "README.md"
CONTRACT_SUITE = TEMPLATE_ROOT / "tests" / "contract" / "test_http_contract.py"


def test_every_question_and_choice_is_documented() -> None:
    for name, spec in questions().items():
        assert f"`{name}`" in OPTIONS, name
        for value in choice_values(spec):
            assert f"`{value}`" in OPTIONS, f"{name}: {value}"


def test_every_computed_value_is_documented() -> None:
    computed = [
        name
        for name, spec in copier_config().items()
        if isinstance(spec, dict) and spec.get("when") is False
    ]
    for name in computed:
        assert f"`{name}`" in OPTIONS, name


def test_template_repository_code_is_lint_clean() -> None:
    for args in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "tests", "hooks", "bench"],
            cwd=TEMPLATE_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


# --- Pages that repeat or show something else -----------------------------------------------------


def readme_first_block() -> list[str]:
    """The lines of the README's first shell block: the generate and test commands."""
    block = re.search(r"```bash\n(.*?)```", README.read_text(), re.DOTALL)
    assert block, "README.md has no bash block"
    return block.group(1).splitlines()


def test_home_and_getting_started_repeat_the_readme_commands_verbatim() -> None:
    lines = readme_first_block()
    assert len(lines) == 2, lines
    for page in ("index.md", "getting-started.md"):
        text = (DOCS / page).read_text()
        assert [line for line in lines if f"\n{line}\n" not in text] == [], page
    assert documented_commands((DOCS / "index.md").read_text()) == documented_commands(
        "```bash\n" + "\n".join(lines) + "\n```"
    )


def test_getting_started_runs_the_default_projects_commands(tmp_path: Path) -> None:
    """Its commands are the README's two, then ones the default project's README documents
    (which the generated-project tests run)."""
    project = render(tmp_path / "my-service", {})
    generated = documented_commands((project / "README.md").read_text())
    template = documented_commands("```bash\n" + "\n".join(readme_first_block()) + "\n```")
    commands = documented_commands((DOCS / "getting-started.md").read_text())
    assert commands[0] == template[0]
    assert commands[-1] == template[1]
    assert [command for command in commands[1:-1] if command not in generated] == []
    assert len(commands) > 3


def test_layout_and_diagrams_match_a_fresh_render(tmp_path: Path) -> None:
    for path, expected in render_pages(tmp_path).items():
        assert path.read_text() == expected, f"{path.name} is out of date: run `{REGENERATE}`"


# --- The HTTP contract page -----------------------------------------------------------------------

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
PAGE_ROUTE = re.compile(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/[^`]*)`")


def normalized(path: str) -> str:
    """`/api/v1/items/{item_id}` and f"/api/v1/items/{item['id']}" both read `/api/v1/items/{}`."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def path_text(node: ast.expr, assigned: dict[str, ast.expr]) -> str | None:
    """The path a call argument spells: a string, an f-string, or a name assigned one."""
    if isinstance(node, ast.Name) and node.id in assigned:
        node = assigned[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else "{}" for part in node.values
        )
    return None


def contract_suite_routes() -> set[tuple[str, str]]:
    """Every (method, path) the contract suite sends: `client.get("/path")` and friends, and the
    ("METHOD", "/path") pairs it loops over with `client.request`."""
    routes = set()
    for function in ast.walk(ast.parse(CONTRACT_SUITE.read_text())):
        if not isinstance(function, ast.FunctionDef):
            continue
        assigned = {
            target.id: node.value
            for node in ast.walk(function)
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in HTTP_METHODS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "client"
                and node.args
            ):
                path = path_text(node.args[0], assigned)
                if path and path.startswith("/"):
                    routes.add((node.func.attr.upper(), normalized(path)))
            if isinstance(node, ast.Tuple) and len(node.elts) == 2:
                method, path = (path_text(element, {}) for element in node.elts)
                if method and method.lower() in HTTP_METHODS and path and path.startswith("/"):
                    routes.add((method, normalized(path)))
    return routes


def contract_page_routes() -> set[tuple[str, str]]:
    lines = (DOCS / "contract.md").read_text().splitlines()
    return {
        (match.group(1), normalized(match.group(2)))
        for line in lines
        if (match := PAGE_ROUTE.match(line))
    }


def test_contract_page_lists_exactly_the_routes_the_contract_suite_calls() -> None:
    page, suite = contract_page_routes(), contract_suite_routes()
    assert len(page) >= 12, page
    assert sorted(page - suite) == [], "routes on the page that the contract suite never calls"
    assert sorted(suite - page) == [], "routes the contract suite calls that the page omits"


def test_contract_route_reader_sees_every_kind_of_call() -> None:
    """The reader behind the page check finds literal, f-string, variable and looped paths."""
    assert {
        ("GET", "/health/live"),
        ("PATCH", "/api/v1/items/{}"),
        ("DELETE", "/api/v1/items/{}"),
        ("GET", "/api/v1/users/me"),
        ("POST", "/api/v1/auth/token"),
    } <= contract_suite_routes()


# --- The site -------------------------------------------------------------------------------------


def mkdocs_build(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=project,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_site_builds_strict_with_every_page_and_the_diagrams(tmp_path: Path) -> None:
    result = mkdocs_build(TEMPLATE_ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    for page in sorted(DOCS.glob("*.md")):
        slug = "" if page.stem == "index" else page.stem + "/"
        assert (tmp_path / "site" / slug / "index.html").is_file(), page.name
    architecture = (tmp_path / "site" / "architecture" / "index.html").read_text()
    # The Mermaid fences become <pre class="mermaid"> blocks that the theme draws.
    assert architecture.count('<pre class="mermaid"><code>flowchart LR') == len(DIAGRAM_ANSWER_SETS)


def test_strict_build_refuses_a_broken_link_and_a_page_outside_the_nav(tmp_path: Path) -> None:
    for broken in ("link", "orphan"):
        copy = tmp_path / broken
        copy.mkdir()
        shutil.copy(TEMPLATE_ROOT / "mkdocs.yml", copy)
        shutil.copytree(DOCS, copy / "docs")
        if broken == "link":
            with (copy / "docs" / "index.md").open("a") as page:
                page.write("\nSee [the missing page](missing.md).\n")
        else:
            (copy / "docs" / "orphan.md").write_text("# Not in the nav\n")
        result = mkdocs_build(copy, tmp_path / f"site-{broken}")
        assert result.returncode != 0, broken
        expected = "missing.md" if broken == "link" else "orphan.md"
        assert expected in result.stderr, result.stderr


def test_readme_links_to_the_docs_resolve() -> None:
    links = re.findall(r"\]\((docs/[^)#]+)", README.read_text())
    assert links, "README.md links to the docs pages"
    assert [link for link in links if not (TEMPLATE_ROOT / link).is_file()] == []
