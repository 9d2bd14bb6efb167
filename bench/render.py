"""Render time: the default answers and the largest combination, against a one-file template.

The one-file template is Copier's own floor: one question, one file, laid out like this one
(copier.yml and a `template/` subdirectory) and committed to git, so both are rendered the same
way, from git at HEAD, with tasks skipped. Each is timed in-process (Copier's Python API, as the
tests call it) and as the `copier copy` command a user types (a new Python process each time). The
cases take turns, after one untimed round, so a change in the machine's load falls on all alike.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copier import run_copy

from .common import TEMPLATE_ROOT, render, run

DEFAULT: dict[str, Any] = {}

# The combination that renders the most files, first choice first (the next is used only if the
# questionnaire refuses one).
LARGEST_CANDIDATES: list[dict[str, Any]] = [
    {
        "framework": framework,
        "database": "postgresql",
        "auth": "jwt",
        "celery": True,
        "broker": "redis",
        "docker": True,
        "ci": "github",
        "agent_files": ["agents_md", "claude", "copilot", "cursor", "gemini"],
    }
    for framework in ("django", "fastapi")
]

FLOOR_COPIER_YML = """\
_subdirectory: template
project_name:
  type: str
  help: Project name
  default: My Service
"""


@dataclass
class RenderCase:
    name: str
    src: Path
    answers: dict[str, Any]
    files: int = 0
    in_process: list[float] = field(default_factory=list)
    command_line: list[float] = field(default_factory=list)


def make_floor_template(folder: Path) -> Path:
    """A one-question, one-file template in a git repository of one commit."""
    (folder / "template").mkdir(parents=True)
    (folder / "copier.yml").write_text(FLOOR_COPIER_YML)
    (folder / "template" / "README.md.jinja").write_text("# {{ project_name }}\n")
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for command in (
        ["git", "init", "--quiet"],
        ["git", "add", "--all"],
        ["git", *identity, "commit", "--quiet", "--message", "floor"],
    ):
        run(command, folder)
    return folder


def accepted(answers: dict[str, Any]) -> bool:
    """Whether the questionnaire takes these answers (validators run; nothing is written)."""
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run_copy(
                str(TEMPLATE_ROOT),
                Path(folder) / "x",
                data=answers,
                defaults=True,
                pretend=True,
                skip_tasks=True,
                quiet=True,
                vcs_ref="HEAD",
            )
        except ValueError:
            return False
    return True


def largest_answers() -> dict[str, Any]:
    return next(answers for answers in LARGEST_CANDIDATES if accepted(answers))


def copier_command(src: Path, destination: Path, answers: dict[str, Any]) -> list[str]:
    data = []
    for name, value in answers.items():
        text = str(value).lower() if isinstance(value, bool) else value
        if isinstance(value, list):
            text = "[" + ", ".join(value) + "]"
        data += ["-d", f"{name}={text}"]
    return [
        sys.executable,
        "-m",
        "copier",
        "copy",
        "--quiet",
        "--trust",
        "--defaults",
        "--skip-tasks",
        "--vcs-ref",
        "HEAD",
        *data,
        str(src),
        str(destination),
    ]


def count_files(folder: Path) -> int:
    return sum(1 for path in folder.rglob("*") if path.is_file())


def measure(repetitions: int = 7) -> list[RenderCase]:
    with tempfile.TemporaryDirectory(prefix="bench-render-") as scratch:
        root = Path(scratch)
        floor = make_floor_template(root / "floor")
        largest = largest_answers()
        cases = [
            RenderCase("one-file template (floor)", floor, {}),
            RenderCase("default answers", TEMPLATE_ROOT, DEFAULT),
            RenderCase("largest combination", TEMPLATE_ROOT, largest),
        ]
        for round_number in range(repetitions + 1):
            for case in cases:
                destination = root / f"{len(case.in_process)}-{round_number}-{id(case)}"
                started = time.perf_counter()
                render(destination / "api", case.answers, src=case.src)
                in_process = time.perf_counter() - started
                case.files = count_files(destination / "api")
                started = time.perf_counter()
                subprocess.run(
                    copier_command(case.src, destination / "cli", case.answers),
                    check=True,
                    capture_output=True,
                )
                command_line = time.perf_counter() - started
                if count_files(destination / "cli") != case.files:
                    raise RuntimeError(f"{case.name}: the command line rendered other files")
                if round_number > 0:  # the first round warms the disk cache and imports
                    case.in_process.append(in_process)
                    case.command_line.append(command_line)
        return cases
