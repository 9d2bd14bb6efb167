"""The results as Markdown: the machine, the method, the numbers and each goal, met or missed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .capacity import (
    BURST_CONNECTIONS,
    BURST_P99_GOAL_MS,
    ITEM_READ_GOAL,
    LIST_CONNECTIONS,
    READ_CONNECTIONS,
    CapacitySettings,
    Setup,
)
from .common import median
from .green import STEPS, GreenCase
from .layers import LAYERS, LayerProfile
from .load import FlavourLoad, LoadSettings
from .render import RenderCase

BEGIN = "<!-- results: written by `uv run python -m bench --write docs/benchmarks.md` -->"
END = "<!-- end of the results -->"


def part_markers(part: str) -> tuple[str, str]:
    """The capacity and layers parts have markers of their own, so each can run and be written
    alone."""
    return (
        f"<!-- {part}: written by `uv run python -m bench --write docs/benchmarks.md` -->",
        f"<!-- end of the {part} results -->",
    )


# The goals of the benchmark (see docs/benchmarks.md).
RENDER_GOAL = 2.0  # the default and the largest render within twice the floor's time
GREEN_GOAL_SECONDS = 20.0  # copier copy to green tests, warm cache
HEALTH_GOAL = 0.9  # the health endpoint at 90% or more of the bare app's requests per second


@dataclass
class FlavourReport:
    load: FlavourLoad
    command: str
    versions: dict[str, str]


@dataclass
class Report:
    command: str
    date: str
    minutes: float
    machine: dict[str, str]
    load_before: str
    load_after: str = ""
    render_repetitions: int = 0
    render: list[RenderCase] = field(default_factory=list)
    largest: dict[str, Any] = field(default_factory=dict)
    green_repetitions: int = 0
    green: list[GreenCase] = field(default_factory=list)
    load_settings: LoadSettings | None = None
    flavours: list[FlavourReport] = field(default_factory=list)
    capacity_settings: CapacitySettings | None = None
    capacity: list[Setup] = field(default_factory=list)
    layers_settings: LoadSettings | None = None
    layers: list[LayerProfile] = field(default_factory=list)


def met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def answers_text(answers: dict[str, Any]) -> str:
    def value(item: Any) -> str:
        if isinstance(item, bool):
            return str(item).lower()
        if isinstance(item, list):
            return "[" + ", ".join(item) + "]"
        return str(item)

    return " ".join(f"`{name}={value(item)}`" for name, item in answers.items())


def header(report: Report) -> list[str]:
    return [
        f"Written by `{report.command}` on {report.date}; the run took "
        f"{report.minutes:.0f} minutes.",
        "",
        "### Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in report.machine.items()),
        f"| load average (1, 5, 15 min) at the start | {report.load_before} |",
        f"| load average (1, 5, 15 min) at the end | {report.load_after} |",
        "",
    ]


def markdown(report: Report) -> str:
    """The render, copy-to-green and load parts."""
    lines = header(report)
    if report.render:
        lines += render_section(report)
    if report.green:
        lines += green_section(report)
    if report.flavours and report.load_settings:
        lines += load_section(report, report.load_settings)
    return "\n".join(lines).rstrip() + "\n"


def render_section(report: Report) -> list[str]:
    floor = report.render[0]
    floor_in_process, floor_command = _medians(floor)
    lines = [
        "### Render time",
        "",
        f"Median of {report.render_repetitions} renders each, after one untimed round, the cases "
        "taking turns; tasks skipped (`skip_tasks=True`, `--skip-tasks`), rendered from git at "
        "`HEAD`. *In-process* is Copier's `run_copy()` in a warm interpreter; *command line* is "
        "`python -m copier copy --trust --defaults --skip-tasks --vcs-ref HEAD`, a new process "
        "each time. The largest combination is "
        f"{answers_text(report.largest)}.",
        "",
        "| case | files | in-process | vs. floor | command line | vs. floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for case in report.render:
        in_process, command = _medians(case)
        lines.append(
            f"| {case.name} | {case.files} | {in_process:.3f} s | "
            f"{in_process / floor_in_process:.1f}x | {command:.2f} s | "
            f"{command / floor_command:.2f}x |"
        )
    lines.append("")
    for case in report.render[1:]:
        in_process, command = _medians(case)
        lines.append(
            f"- Goal, {case.name} within {RENDER_GOAL:.0f}x the floor: command line "
            f"{met(command <= RENDER_GOAL * floor_command)} "
            f"({command / floor_command:.2f}x), in-process "
            f"{met(in_process <= RENDER_GOAL * floor_in_process)} "
            f"({in_process / floor_in_process:.1f}x)."
        )
    return [*lines, ""]


def _medians(case: RenderCase) -> tuple[float, float]:
    return median(case.in_process), median(case.command_line)


def green_section(report: Report) -> list[str]:
    lines = [
        "### From `copier copy` to green tests",
        "",
        f"Wall clock, median of {report.green_repetitions} runs per framework after one untimed "
        "run that warms uv's cache. `copier copy --trust --defaults --vcs-ref HEAD -d "
        "framework=...` (its post-copy step runs `git init`, `uv lock` and the first commit), "
        "then `uv sync` and `uv run pytest` in the new project.",
        "",
        "| framework | "
        + " | ".join(f"`{step}`" for step in STEPS)
        + " | total | goal | CPU time |",
        "|---|" + "---:|" * (len(STEPS) + 3),
    ]
    for case in report.green:
        steps = " | ".join(f"{case.step(step):.1f} s" for step in STEPS)
        lines.append(
            f"| {case.framework} | {steps} | {case.total:.1f} s | "
            f"{met(case.total < GREEN_GOAL_SECONDS)} | {case.total_cpu:.1f} s |"
        )
    lines += [
        "",
        f"Goal: under {GREEN_GOAL_SECONDS:.0f} s of wall clock with a warm cache. *CPU time* is "
        "the user and system time of every process the three steps ran (median of the runs), "
        "which the machine's other work does not stretch.",
    ]
    return [*lines, ""]


def load_section(report: Report, settings: LoadSettings) -> list[str]:
    lines = [
        "### Production servers under load",
        "",
        f"wrk, {settings.threads} threads, {settings.connections} connections, "
        f"{settings.duration:.0f} s per run, {settings.repetitions} runs per endpoint (the "
        "medians are shown; requests and errors are totals), each endpoint warmed for "
        f"{settings.warmup:.0f} s first; a request over {settings.timeout:.0f} s counts as an "
        "error. The runs take turns across the endpoints and the bare app, and after each one "
        "the server answers what wrk left queued before the next starts. Servers on loopback "
        f"with `WEB_CONCURRENCY={settings.workers}`, `ENVIRONMENT=production`, JWT auth, SQLite; "
        "each project's server is its Dockerfile's `CMD` run through `uv run` (Gunicorn gets "
        "`--bind 127.0.0.1:PORT`), the bare app is one route run by the same command and flags.",
        "",
        "| server | endpoint | requests/s | p99 | vs. bare | CPU per request | vs. bare "
        "| requests | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for flavour in report.flavours:
        bare = flavour.load.result(f"{flavour.load.framework} bare", "health")
        for measured in flavour.load.results:
            rate, cpu = "—", "—"
            if measured.endpoint != "login":  # the bare app's route is a health check
                rate = f"{measured.requests_per_second / bare.requests_per_second:.0%}"
                cpu = f"{bare.cpu_us_per_request / measured.cpu_us_per_request:.0%}"
            lines.append(
                f"| {measured.server} | {measured.endpoint} | "
                f"{measured.requests_per_second:,.0f} | {measured.p99_ms:,.1f} ms | {rate} | "
                f"{measured.cpu_us_per_request:,.0f} µs | {cpu} | {measured.requests:,} | "
                f"{measured.errors} |"
            )
    lines += [
        "",
        "*CPU per request* is the CPU time (user and system) of the server's processes during a "
        "run, divided by the requests wrk completed: unlike requests per second it hardly depends "
        "on what else the machine runs. Its *vs. bare* column is the bare app's CPU per health "
        "check divided by this row's, so both *vs. bare* columns read as a share of the ceiling.",
        "",
        "Goals:",
        "",
    ]
    for flavour in report.flavours:
        load = flavour.load
        health = load.result(load.framework, "health")
        bare = load.result(f"{load.framework} bare", "health")
        share = health.requests_per_second / bare.requests_per_second
        cpu_share = bare.cpu_us_per_request / health.cpu_us_per_request
        errors = sum(measured.errors for measured in load.results)
        lines.append(
            f"- {load.framework}: health at {share:.0%} of the bare app's requests per second "
            f"({met(share >= HEALTH_GOAL)}, goal {HEALTH_GOAL:.0%}; {cpu_share:.0%} by CPU per "
            "request); "
            f"{errors} errors ({met(errors == 0)}, goal 0); "
            f"{len(load.log_errors)} error lines in the server's log."
        )
    lines += ["", "Servers and versions:", ""]
    for flavour in report.flavours:
        versions = ", ".join(f"{name} {number}" for name, number in flavour.versions.items())
        lines.append(f"- {flavour.load.framework}: `{flavour.command}`; {versions}.")
    return [*lines, ""]


def standalone(report: Report, section: list[str]) -> str:
    """A part written between markers of its own, with its own header: it may be run alone."""
    return "\n".join(header(report) + section)


def capacity_section(report: Report, settings: CapacitySettings) -> list[str]:
    lines = [
        "### Capacity: databases, workers and many connections",
        "",
        f"wrk, 2 threads, one run of {settings.duration:.0f} s per case after "
        f"{settings.warmup:.0f} s of warm-up; the health checks with 8 connections, the "
        f"authenticated item read with {READ_CONNECTIONS}, the item list (a page of 20) with "
        + " and ".join(str(connections) for connections in LIST_CONNECTIONS)
        + ". Each project (JWT auth) and a bare app of its framework run side by side with the "
        "same `WEB_CONCURRENCY`, on SQLite or on a new database of the local PostgreSQL "
        "server; otherwise as in the load part. *vs. bare* is the share of the bare app's health "
        "checks per second in the same setup.",
        "",
        "| framework | database | workers | bare health | health | vs. bare | item read "
        "| vs. bare | CPU per read | "
        + " | ".join(f"item list, {connections} conns" for connections in LIST_CONNECTIONS)
        + " | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(LIST_CONNECTIONS) + "---:|",
    ]
    for setup in report.capacity:
        bare = setup.bare
        health = setup.result(setup.framework, "health", 8)
        read = setup.result(setup.framework, "item read", READ_CONNECTIONS)
        lists = [
            setup.result(setup.framework, "item list", connections)
            for connections in LIST_CONNECTIONS
        ]
        errors = sum(measured.errors for measured, _ in setup.results)
        list_cells = " | ".join(
            f"{measured.requests_per_second:,.0f}/s, p99 {measured.p99_ms:,.0f} ms"
            for measured in lists
        )
        lines.append(
            f"| {setup.framework} | {setup.database} | {setup.workers} | "
            f"{bare.requests_per_second:,.0f}/s | {health.requests_per_second:,.0f}/s | "
            f"{health.requests_per_second / bare.requests_per_second:.0%} | "
            f"{read.requests_per_second:,.0f}/s | "
            f"{read.requests_per_second / bare.requests_per_second:.1%} | "
            f"{read.cpu_us_per_request:,.0f} µs | {list_cells} | {errors} |"
        )
    lines += ["", "Goals:", ""]
    for setup in report.capacity:
        bare = setup.bare
        health = setup.result(setup.framework, "health", 8)
        read = setup.result(setup.framework, "item read", READ_CONNECTIONS)
        burst = setup.result(setup.framework, "item list", BURST_CONNECTIONS)
        health_share = health.requests_per_second / bare.requests_per_second
        read_share = read.requests_per_second / bare.requests_per_second
        goals = [
            f"health at {health_share:.0%} of the bare app ({met(health_share >= HEALTH_GOAL)}, "
            f"goal {HEALTH_GOAL:.0%})",
            f"item read at {read_share:.1%} ({met(read_share >= ITEM_READ_GOAL)}, goal "
            f"{ITEM_READ_GOAL:.0%})",
        ]
        if setup.workers == 1:
            burst_ok = burst.errors == 0 and burst.p99_ms < BURST_P99_GOAL_MS
            goals.append(
                f"item list at {BURST_CONNECTIONS} connections: {burst.errors} errors, p99 "
                f"{burst.p99_ms:,.0f} ms ({met(burst_ok)}, goal no error and under "
                f"{BURST_P99_GOAL_MS:,.0f} ms)"
            )
        goals.append(f"{len(setup.log_errors)} error lines in the server's log")
        lines.append(
            f"- {setup.framework}, {setup.database}, {setup.workers} worker(s): "
            + "; ".join(goals)
            + "."
        )
    return [*lines, ""]


def layers_section(report: Report, settings: LoadSettings) -> list[str]:
    lines = [
        "### Cost of an item read by layer",
        "",
        f"Each project's production server with one worker, JWT auth and SQLite; wrk sends "
        f"authenticated `GET /api/v1/items/{{id}}` with {settings.connections} connections for "
        f"{settings.duration:.0f} s after {settings.warmup:.0f} s of warm-up, while py-spy "
        "samples the thread holding Python's GIL in the server's processes 250 times a second, "
        "without pausing them. A sample goes to the layer of its innermost frame that has one "
        "(`bench/layers.py` lists the packages and modules of each); the user CPU time per "
        "request is split by the layers' shares of the samples (in parentheses). *Kernel* is the "
        "system CPU time per request: the kernel's work for the server (sockets, waking "
        "threads). Time in C code (a driver, the event loop, an encoder) counts for the Python "
        "frame that called it.",
        "",
        "| framework | requests/s | CPU per read | " + " | ".join(LAYERS) + " | kernel | samples |",
        "|---|---:|---:|" + "---:|" * len(LAYERS) + "---:|---:|",
    ]
    for profile in report.layers:
        cells = " | ".join(
            f"{profile.microseconds(layer):,.0f} µs ({profile.share(layer):.0%})"
            for layer in LAYERS
        )
        lines.append(
            f"| {profile.framework} | {profile.requests_per_second:,.0f} | "
            f"{profile.cpu_us_per_request:,.0f} µs | {cells} | "
            f"{profile.system_us_per_request:,.0f} µs | {profile.total_samples:,} |"
        )
    return [*lines, ""]


def write(page: Path, results: str, *, begin: str = BEGIN, end: str = END) -> None:
    """Replace the results between the page's markers, leaving the rest of the page alone."""
    text = page.read_text()
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise LookupError(f"{page} has no results markers ({begin} ... {end})")
    page.write_text(pattern.sub(lambda _: f"{begin}\n\n{results}\n{end}", text))
