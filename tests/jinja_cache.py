"""The test run's renders compile each Jinja source once.

Copier builds a new Jinja environment for every render and compiles, through `from_string`, every
path segment of every entry of `template/` (the other flavours' included), and every file it
renders, again: about 1,200 compilations for one render, most of its time. The tests render
hundreds of times from the same sources, so the compiled code is kept here, per worker process,
keyed by the source and every setting of the environment that changes what Jinja generates.
A template built from the kept code is a new one, bound to the render's own environment and
globals: what each render writes is unchanged. The benchmarks do not use this (they measure
Copier as users run it).
"""

from __future__ import annotations

from types import CodeType
from typing import Any

import jinja2

_compiled: dict[tuple[Any, ...], CodeType] = {}


def _settings(environment: jinja2.Environment) -> tuple[Any, ...]:
    """What, besides the source, decides the code Jinja generates."""
    return (
        environment.block_start_string,
        environment.block_end_string,
        environment.variable_start_string,
        environment.variable_end_string,
        environment.comment_start_string,
        environment.comment_end_string,
        environment.line_statement_prefix,
        environment.line_comment_prefix,
        environment.trim_blocks,
        environment.lstrip_blocks,
        environment.newline_sequence,
        environment.keep_trailing_newline,
        environment.optimized,
        environment.autoescape if isinstance(environment.autoescape, bool) else None,
        environment.code_generator_class,
        environment.context_class,
        tuple(sorted(environment.extensions)),
        tuple(sorted(environment.filters)),
        tuple(sorted(environment.tests)),
    )


def compile_once() -> None:
    """Keep what `Environment.compile` returns for each source (idempotent)."""
    original = jinja2.Environment.compile
    if getattr(original, "compiles_once", False):
        return

    def compile(
        self: jinja2.Environment,
        source: str | jinja2.nodes.Template,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        if raw or not isinstance(source, str) or not isinstance(self.autoescape, bool):
            return original(self, source, name, filename, raw, defer_init)
        # A file's name is its path in the template; its filename, in the clone Copier made for
        # this render, changes every time: kept by name, the code names the first clone's file
        # in a traceback.
        key = (source, name, filename if name is None else None, defer_init, _settings(self))
        code = _compiled.get(key)
        if code is None:
            code = _compiled[key] = original(self, source, name, filename, raw, defer_init)
        return code

    compile.compiles_once = True  # type: ignore[attr-defined]
    jinja2.Environment.compile = compile  # type: ignore[method-assign, assignment]
