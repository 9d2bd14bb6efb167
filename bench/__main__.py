"""`uv run python -m bench`: run the benchmarks, print the method and the results as Markdown.

`--write docs/benchmarks.md` also puts them into that page, between its results markers.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from . import capacity, fanout, green, layers, load, render
from .machine import describe, load_average
from .report import (
    BEGIN,
    END,
    FlavourReport,
    Report,
    capacity_section,
    layers_section,
    markdown,
    part_markers,
    standalone,
    write,
)

PARTS = ("render", "green", "load", "capacity", "layers", "fanout")
# Parts written between markers of their own (the others share one pair).
OWN_SECTIONS = {"capacity", "layers", "fanout"}


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only", choices=PARTS, action="append", help="run only this part (repeatable)"
    )
    parser.add_argument(
        "--framework",
        choices=load.FRAMEWORKS,
        action="append",
        help="all but render on this framework only (repeatable; default: all three)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer and shorter runs: a smoke test of the harness"
    )
    parser.add_argument("--write", type=Path, help="write the results into this Markdown page")
    return parser.parse_args(argv)


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    parts = arguments.only or list(PARTS)
    frameworks = tuple(arguments.framework or load.FRAMEWORKS)
    if {"load", "capacity", "layers"} & set(parts) and shutil.which("wrk") is None:
        print(load.WRK_INSTALL_HINT, file=sys.stderr)
        return 2
    quick = arguments.quick
    started = time.monotonic()
    report = Report(
        command="uv run python -m bench " + shlex.join(argv),
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        minutes=0,
        machine=describe(),
        load_before=load_average(),
    )
    if "render" in parts:
        report.render_repetitions = 3 if quick else 15
        progress(f"render time, {report.render_repetitions} rounds")
        report.largest = render.largest_answers()
        report.render = render.measure(report.render_repetitions)
    if "green" in parts:
        report.green_repetitions = 1 if quick else 3
        progress(f"copy to green, {report.green_repetitions} timed runs per framework")
        report.green = green.measure(frameworks, report.green_repetitions)
    if "load" in parts:
        settings = (
            load.LoadSettings(duration=2, warmup=1, repetitions=1, connections=4)
            if quick
            else load.LoadSettings()
        )
        report.load_settings = settings
        with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
            for framework in frameworks:
                progress(f"load on {framework}")
                project = load.prepare_project(
                    Path(scratch) / framework, {"framework": framework, "auth": "jwt"}
                )
                report.flavours.append(
                    FlavourReport(
                        load.load_flavour(project, settings),
                        shlex.join(["uv", "run", *project.server_command]),
                        project.versions(),
                    )
                )
    if "capacity" in parts:
        report.capacity_settings = (
            capacity.CapacitySettings(duration=2, warmup=1)
            if quick
            else capacity.CapacitySettings()
        )
        with tempfile.TemporaryDirectory(prefix="bench-capacity-") as scratch:
            report.capacity = capacity.measure(
                Path(scratch), frameworks, report.capacity_settings, progress
            )
    if "layers" in parts:
        report.layers_settings = (
            load.LoadSettings(duration=6, warmup=1, connections=layers.READ_CONNECTIONS)
            if quick
            else load.LoadSettings(duration=15, warmup=3, connections=layers.READ_CONNECTIONS)
        )
        progress("cost by layer")
        with tempfile.TemporaryDirectory(prefix="bench-layers-") as scratch:
            report.layers = layers.measure(Path(scratch), frameworks, report.layers_settings)
    fanout_results: list[fanout.FanoutResult] = []
    fanout_settings = (
        fanout.FanoutSettings(subscribers=100, duration=3, drain=5)
        if quick
        else fanout.FanoutSettings()
    )
    if "fanout" in parts:
        with tempfile.TemporaryDirectory(prefix="bench-fanout-") as scratch:
            fanout_results = fanout.measure(Path(scratch), fanout_settings, progress)
    report.load_after = load_average()
    report.minutes = (time.monotonic() - started) / 60
    sections = []  # each part's Markdown and the markers it goes between
    if set(parts) - OWN_SECTIONS:
        sections.append((markdown(report), (BEGIN, END)))
    if report.capacity and report.capacity_settings:
        section = capacity_section(report, report.capacity_settings)
        sections.append((standalone(report, section), part_markers("capacity")))
    if report.layers and report.layers_settings:
        section = layers_section(report, report.layers_settings)
        sections.append((standalone(report, section), part_markers("layers")))
    if fanout_results:
        section = fanout.section(fanout_results, fanout_settings)
        sections.append((standalone(report, section), part_markers("fanout")))
    for results, (begin, end) in sections:
        print(results)
        if arguments.write:
            write(arguments.write, results, begin=begin, end=end)
    if arguments.write:
        progress(f"results written to {arguments.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
