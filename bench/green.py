"""From `copier copy` to a green test run, with uv's cache warm.

Each run is what a newcomer types: `copier copy --trust --defaults` (its post-copy step runs `git
init`, `uv lock` and the first commit), then `uv sync` and `uv run pytest` in the new project. The
first run of each framework is not timed: it fills uv's cache, so the timed ones download nothing.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .common import TEMPLATE_ROOT, median, timed

STEPS = ("copier copy", "uv sync", "uv run pytest")


@dataclass
class GreenRun:
    steps: dict[str, float]
    # CPU seconds (user and system) of each step's processes: what the machine's other work
    # cannot stretch.
    cpu: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.steps.values())

    @property
    def total_cpu(self) -> float:
        return sum(self.cpu.values())


@dataclass
class GreenCase:
    framework: str
    runs: list[GreenRun] = field(default_factory=list)

    @property
    def total(self) -> float:
        return median([run.total for run in self.runs])

    @property
    def total_cpu(self) -> float:
        return median([run.total_cpu for run in self.runs])

    def step(self, name: str) -> float:
        return median([run.steps[name] for run in self.runs])


def copy_to_green(destination: Path, framework: str) -> GreenRun:
    copy = [
        sys.executable,
        "-m",
        "copier",
        "copy",
        "--quiet",
        "--trust",
        "--defaults",
        "--vcs-ref",
        "HEAD",
        "-d",
        f"framework={framework}",
        str(TEMPLATE_ROOT),
        str(destination),
    ]
    measured = {"copier copy": timed(copy, destination.parent)}
    for command in STEPS[1:]:
        measured[command] = timed(command, destination)
    return GreenRun(
        {step: wall for step, (wall, _) in measured.items()},
        {step: cpu for step, (_, cpu) in measured.items()},
    )


def measure(frameworks: tuple[str, ...], repetitions: int = 3) -> list[GreenCase]:
    cases = []
    with tempfile.TemporaryDirectory(prefix="bench-green-") as scratch:
        for framework in frameworks:
            case = GreenCase(framework)
            for number in range(repetitions + 1):
                result = copy_to_green(Path(scratch) / f"{framework}-{number}", framework)
                if number > 0:  # the first run warms uv's cache
                    case.runs.append(result)
            cases.append(case)
    return cases
