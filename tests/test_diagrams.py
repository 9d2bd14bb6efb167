"""Mermaid diagrams parse with Mermaid itself: the docs site's, and the generated README's on every
combination of the answers it reads, where it also names only the chosen technology.

Mermaid runs under Node.js (npm's `mermaid` package, with jsdom standing in for the browser it
expects), installed on first use into the cache directory at pinned versions: the major version
is the one the documentation theme loads in the browser.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from . import test_agent_files as agent_checks
from .harness import TEMPLATE_ROOT, choice_values, questions, render
from .podman import CACHE, cache_lock

MERMAID_VERSION = "11.17.2"
JSDOM_VERSION = "26.1.0"  # the newest major that runs on Node.js 20
MERMAID_BLOCK = re.compile(r"^```mermaid\n(.*?)^```$", re.DOTALL | re.MULTILINE)

# The questions the README's stack diagram reads (includes/stack_diagram.md.jinja); it also reads
# celery and broker, checked on a few answer sets of their own (celery_answer_sets).
DIAGRAM_QUESTIONS = ["framework", "database", "auth", "docker", "redis"]


@cache
def mermaid_prefix() -> Path:
    """npm's mermaid and jsdom, installed once into the cache directory."""
    prefix = CACHE / f"mermaid-{MERMAID_VERSION}-jsdom-{JSDOM_VERSION}"
    with cache_lock(prefix.name):
        if not (prefix / "node_modules" / "mermaid" / "package.json").exists():
            npm = shutil.which("npm")
            assert npm, "checking Mermaid diagrams needs Node.js and npm"
            subprocess.run(
                [
                    npm,
                    "install",
                    "--no-save",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                    str(prefix),
                    f"mermaid@{MERMAID_VERSION}",
                    f"jsdom@{JSDOM_VERSION}",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
    return prefix


# Reads a JSON list of diagrams on stdin, writes a list of the same length: null for a diagram
# that parses, else Mermaid's error message. `mermaid.parse` detects the diagram type and runs
# its grammar; jsdom gives DOMPurify (which sanitizes labels) the document it needs.
MERMAID_SCRIPT = """
const prefix = process.argv[1];
const { createRequire } = require("node:module");
const { pathToFileURL } = require("node:url");
const load = createRequire(prefix + "/node_modules/");
const { JSDOM } = load("jsdom");
const dom = new JSDOM("");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const chunks = [];
process.stdin.on("data", (chunk) => chunks.push(chunk));
process.stdin.on("end", async () => {
  const entry = prefix + "/node_modules/mermaid/dist/mermaid.core.mjs";
  const { default: mermaid } = await import(pathToFileURL(entry).href);
  const results = [];
  for (const diagram of JSON.parse(Buffer.concat(chunks).toString("utf8"))) {
    try {
      await mermaid.parse(diagram);
      results.push(null);
    } catch (error) {
      results.push(String(error && error.message ? error.message : error));
    }
  }
  process.stdout.write(JSON.stringify(results));
});
"""


def mermaid_errors(diagrams: list[str]) -> list[str | None]:
    result = subprocess.run(
        ["node", "-e", MERMAID_SCRIPT, str(mermaid_prefix())],
        input=json.dumps(diagrams),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    errors: list[str | None] = json.loads(result.stdout)
    assert len(errors) == len(diagrams)
    return errors


def mermaid_blocks(markdown: str) -> list[str]:
    return MERMAID_BLOCK.findall(markdown)


def test_mermaid_check_catches_a_broken_diagram() -> None:
    valid = 'flowchart LR\n    a(["HTTP clients"]) -->|"JSON"| b[("SQLite")]\n'
    unclosed = 'flowchart LR\n    a["HTTP clients] --> b\n'
    dangling = "flowchart LR\n    a --> b\n    b -->\n"
    errors = mermaid_errors([valid, unclosed, dangling])
    assert errors[0] is None
    assert "Parse error" in str(errors[1])
    assert "Parse error" in str(errors[2])


def test_docs_diagrams_parse() -> None:
    diagrams = [
        (page.name, block)
        for page in sorted((TEMPLATE_ROOT / "docs").glob("*.md"))
        for block in mermaid_blocks(page.read_text())
    ]
    assert len(diagrams) >= 4, "the architecture page shows the stack of four answer sets"
    errors = mermaid_errors([block for _, block in diagrams])
    assert [(name, error) for (name, _), error in zip(diagrams, errors, strict=True) if error] == []


def diagram_answer_sets() -> list[dict[str, Any]]:
    """Every combination of the questions the diagram reads (refused ones are skipped later)."""
    specs = questions()
    values = [
        [True, False] if specs[name].get("type") == "bool" else choice_values(specs[name])
        for name in DIAGRAM_QUESTIONS
    ]
    return [
        dict(zip(DIAGRAM_QUESTIONS, combo, strict=True)) for combo in itertools.product(*values)
    ]


def celery_answer_sets() -> list[dict[str, Any]]:
    """Each broker with and without Docker, frameworks and databases rotating: the Celery
    branches of the diagram without multiplying every combination above by four."""
    specs = questions()
    frameworks, databases = choice_values(specs["framework"]), choice_values(specs["database"])
    return [
        {
            "framework": frameworks[index % len(frameworks)],
            "database": databases[(index + 1) % len(databases)],
            "docker": docker,
            "celery": True,
            "broker": broker,
        }
        for index, (broker, docker) in enumerate(
            itertools.product(choice_values(specs["broker"]), [True, False])
        )
    ]


def test_readme_diagram_parses_and_names_only_chosen_technology(tmp_path: Path) -> None:
    rendered: list[tuple[dict[str, Any], str]] = []
    for index, answers in enumerate(diagram_answer_sets() + celery_answer_sets()):
        answers = {**answers, "agent_files": ["agents_md"]}
        try:
            # The README and AGENTS.md are all this test reads.
            project = render(
                tmp_path / str(index) / "my-service", answers, only=["README.md", "AGENTS.md"]
            )
        except ValueError:  # a combination the questionnaire refuses at the question
            continue
        blocks = mermaid_blocks((project / "README.md").read_text())
        assert len(blocks) == 1, answers
        rendered.append((answers, blocks[0]))
        # The README, diagram included, names the chosen framework, database and auth and no
        # other (the same check the render matrix runs, here also on docker=false).
        agent_checks.test_files_name_the_chosen_technology_and_nothing_else((answers, project))
    frameworks = {answers["framework"] for answers, _ in rendered}
    assert frameworks == {"fastapi", "flask", "django"}, "every framework renders a diagram"
    brokers = {answers.get("broker") for answers, _ in rendered if answers.get("celery")}
    assert brokers == {"sqlite", "redis", "rabbitmq"}, "every broker renders a diagram"
    errors = mermaid_errors([block for _, block in rendered])
    assert [
        (answers, error) for (answers, _), error in zip(rendered, errors, strict=True) if error
    ] == []
    # Each answer changes the diagram: no two combinations draw the same one.
    assert len({block for _, block in rendered}) == len(rendered)


@pytest.mark.parametrize(
    ("answers", "present", "absent"),
    [
        ({}, ['subgraph compose ["compose.yaml"]', "auth[", "api --> auth"], ["broker[", "beat["]),
        ({"auth": "none"}, ["api --> logic"], ["auth[", "users/"]),
        ({"docker": False, "database": "postgresql"}, ["PostgreSQL"], ["compose", "Docker"]),
        ({"framework": "django", "database": "mysql"}, ["Django ORM", "MySQL"], ["SQLAlchemy"]),
        (
            {"celery": True, "broker": "rabbitmq", "database": "postgresql"},
            ["Celery broker: RabbitMQ (AMQP)<br/>the rabbitmq service", "worker: service", "beat["],
            ["Redis", "kombu"],
        ),
        (
            {"celery": True, "docker": False},
            ["broker[(\"Celery broker: SQLite (kombu's", 'broker -->|"tasks"| worker'],
            ["app-data", "one service", "the app's image"],
        ),
    ],
)
def test_readme_diagram_follows_the_answers(
    tmp_path: Path, answers: dict[str, Any], present: list[str], absent: list[str]
) -> None:
    project = render(tmp_path / "my-service", answers)
    (diagram,) = mermaid_blocks((project / "README.md").read_text())
    assert [text for text in present if text not in diagram] == []
    assert [text for text in absent if text in diagram] == []
