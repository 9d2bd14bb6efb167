"""The fully run variants: a pairwise covering array computed from copier.yml.

Every question a user answers by choosing (a `choices` list, a yes/no, each choice of a
multiselect) is a factor. A row gives every factor a value and is an answer set the questionnaire
accepts: a question whose `when` is false has no value (it is not asked), and every validator
accepts the row. The array starts from the default answers and grows greedily, one row at a time,
each row holding as many of the combinations no earlier row holds as it can, until every pair of
values that some accepted row can hold (and every combination of the TRIPLES) is in a row. A new
question or choice in copier.yml joins the array with no change here; a new `when` or validator is
obeyed.

Free-text questions keep their defaults: they change names, not the code paths a full run
exercises (tests/test_questionnaire.py fuzzes them, the render matrix renders them).

`uv run python -m tests.covering` prints the array and what it covers.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from jinja2 import meta

from .harness import COPIER_JINJA, choice_values, questions

# A question that is not asked has no value in a row.
NOT_ASKED = None

# Interactions of three questions that the full run must see in every combination, beyond pairs:
# each framework wires each auth mode to Celery its own way (the welcome email is queued by each
# flavour's own registration), and to GraphQL (each finds the caller of a GraphQL request its own
# way).
TRIPLES = [("framework", "auth", "celery"), ("framework", "auth", "graphql")]

# Questions whose code meets only these others: their values are paired with these questions'
# values alone, not with every other question's, and placed on the rows the other questions
# make (so a new NARROW question changes no other answer of the array). The Flet client
# (client/) talks to the service over HTTP and the WebSocket, so what it does depends on the
# framework (which dev server its tests start), auth, realtime and Celery (its tests' settings),
# not on the database, the broker or the delivery options.
NARROW: dict[str, tuple[str, ...]] = {"client": ("framework", "auth", "realtime", "celery")}

# Rows the full run must hold beyond pairs, each grown from these values first: each flavour
# writes its own real-time fan-outs, so each runs events through Redis and through PostgreSQL's
# LISTEN/NOTIFY without it, and both fan-outs run once with the Docker image (the production-
# process check of tests/contract/test_realtime.py).
REQUIRED_ROWS: list[dict[str, Any]] = [
    *(
        {"framework": framework, "realtime": True, "redis": True, "docker": framework == "fastapi"}
        for framework in ("fastapi", "flask", "django")
    ),
    *(
        {
            "framework": framework,
            "realtime": True,
            "redis": False,
            "database": "postgresql",
            "docker": framework == "fastapi",
        }
        for framework in ("fastapi", "flask", "django")
    ),
]

# How many candidate rows are grown for each row kept, and the seed of their tie-breaks: with
# the REQUIRED_ROWS grown first, seed 19 is the smallest array among the first 46 seeds for
# copier.yml, 19 rows (most give 20 to 22). At least 16 rows are needed to hold every pair of the
# four broker values, none included, and the four licences.
CANDIDATES = 32
SEED = 19

Value = Any
Item = tuple[str, Value]
Combination = tuple[Item, ...]


@cache
def _template(source: str) -> Any:
    return COPIER_JINJA.from_string(source)


@dataclass(frozen=True)
class Factor:
    """One choice a user makes. `question` is the copier.yml question; for a multiselect,
    `choice` names the one choice this factor switches on (True) or off (False)."""

    name: str
    question: str
    values: tuple[Value, ...]
    choice: Value = None


@dataclass(frozen=True)
class Rule:
    """A question's `when` or validator, and the factors whose values its template reads."""

    question: str
    kind: str  # "when" or "validator"
    source: str
    reads: tuple[str, ...]


class Questionnaire:
    """The choice questions of a copier.yml, and the answer sets it accepts."""

    def __init__(
        self,
        specs: Mapping[str, Mapping[str, Any]],
        triples: list[tuple[str, ...]] = TRIPLES,
        required_rows: list[dict[str, Any]] = REQUIRED_ROWS,
    ) -> None:
        self.specs = specs
        self.factors = self._factors()
        self.by_question = {
            question: [factor.name for factor in self.factors if factor.question == question]
            for question in dict.fromkeys(factor.question for factor in self.factors)
        }
        self.narrow = [factor.name for factor in self.factors if factor.question in NARROW]
        self.broad = [factor for factor in self.factors if factor.name not in self.narrow]
        self.rules = self._rules()
        ruled = {name for rule in self.rules for name in rule.reads}
        # The factors a rule reads are searched first, so that a row no rule accepts is found out
        # before the free factors are tried; only they can make a row unacceptable.
        self.ruled = [factor.name for factor in self.factors if factor.name in ruled]
        self.search_order = [
            *(factor for factor in self.factors if factor.name in ruled),
            *(factor for factor in self.factors if factor.name not in ruled),
        ]
        names = [factor.name for factor in self.factors]
        known = [group for group in triples if all(name in names for name in group)]
        self.groups = [
            *(pair for pair in itertools.combinations(names, 2) if self._meet(*pair)),
            *known,
        ]
        self.groups_of = {name: [group for group in self.groups if name in group] for name in names}
        self.required_rows = [row for row in required_rows if set(row) <= set(names)]
        self._feasible_cache: dict[tuple[Item, ...], bool] = {}

    def _meet(self, first: str, second: str) -> bool:
        """Whether the two factors' values are paired (a NARROW question meets few others)."""
        questions = {name: self.factor(name).question for name in (first, second)}
        return all(
            questions[other] in NARROW.get(questions[name], (questions[other],))
            for name, other in ((first, second), (second, first))
        )

    def factor(self, name: str) -> Factor:
        return next(factor for factor in self.factors if factor.name == name)

    def _factors(self) -> list[Factor]:
        found = []
        for name, spec in self.specs.items():
            unasked = (NOT_ASKED,) if "when" in spec else ()
            if spec.get("multiselect"):
                for choice in choice_values(dict(spec)):
                    found.append(Factor(f"{name}:{choice}", name, (True, False), choice))
            elif spec.get("type") == "bool":
                found.append(Factor(name, name, (True, False, *unasked)))
            elif spec.get("choices"):
                found.append(Factor(name, name, (*choice_values(dict(spec)), *unasked)))
        return found

    def _rules(self) -> list[Rule]:
        """The `when`s and validators of the choice questions."""
        found = []
        for question in self.by_question:
            for kind in ("when", "validator"):
                source = self.specs[question].get(kind)
                if isinstance(source, str) and "{" in source:
                    reads = meta.find_undeclared_variables(COPIER_JINJA.parse(source)) | {question}
                    names = [
                        name for read in sorted(reads) for name in self.by_question.get(read, [])
                    ]
                    found.append(Rule(question, kind, source, tuple(names)))
        return found

    def answers(self, row: Mapping[str, Value]) -> dict[str, Value]:
        """A (partial) row as Copier's data: multiselect factors gathered into the question's
        list, unasked questions left out."""
        data: dict[str, Value] = {}
        for factor in self.factors:
            if factor.name not in row:
                continue
            value = row[factor.name]
            if factor.choice is not None:
                data.setdefault(factor.question, [])
                if value:
                    data[factor.question].append(factor.choice)
            elif value is not NOT_ASKED:
                data[factor.question] = value
        return data

    def accepts(self, row: Mapping[str, Value]) -> bool:
        """Whether the questionnaire accepts what the row holds so far (a rule is checked once
        the row gives a value to every factor it reads)."""
        for rule in self.rules:
            if not all(name in row for name in rule.reads):
                continue
            data = self.answers(row)
            rendered = _template(rule.source).render(data).strip()
            if rule.kind == "when":
                asked = rendered.lower() not in {"", "false", "0", "none", "no"}
                if any(
                    (row[name] is not NOT_ASKED) != asked
                    for name in self.by_question[rule.question]
                ):
                    return False
            elif rule.question in data and rendered:
                return False
        return True

    def completion(self, row: dict[str, Value]) -> dict[str, Value] | None:
        """A whole row the questionnaire accepts that extends this one, or None."""
        if not self.accepts(row):
            return None
        missing = [factor for factor in self.search_order if factor.name not in row]
        if not missing:
            return row
        for value in missing[0].values:
            found = self.completion({**row, missing[0].name: value})
            if found is not None:
                return found
        return None

    def feasible(self, row: Mapping[str, Value]) -> bool:
        """Whether some accepted row extends this one (remembered for what the row gives the
        factors a rule reads: the others take any of their values)."""
        key = tuple((name, row[name]) for name in self.ruled if name in row)
        if key not in self._feasible_cache:
            self._feasible_cache[key] = self.completion(dict(key)) is not None
        return self._feasible_cache[key]

    def combinations_of(self, row: Mapping[str, Value]) -> set[Combination]:
        """The pairs (and TRIPLES) of values the row holds, each in factor order."""
        return {
            tuple((name, row[name]) for name in group)
            for group in self.groups
            if all(name in row for name in group)
        }

    @cached_property
    def every_combination(self) -> frozenset[Combination]:
        """Every pair (and TRIPLES combination) of values some accepted row holds."""
        values = {factor.name: factor.values for factor in self.factors}
        found = set()
        for group in self.groups:
            for chosen in itertools.product(*(values[name] for name in group)):
                combination = tuple(zip(group, chosen, strict=True))
                if self.feasible(dict(combination)):
                    found.add(combination)
        return frozenset(found)

    @cached_property
    def defaults(self) -> dict[str, Value]:
        return self.default_row()

    def default_row(self) -> dict[str, Value]:
        """The questionnaire's defaults (a question whose `when` is false unasked)."""
        row: dict[str, Value] = {}
        for factor in self.factors:
            default = self.specs[factor.question].get("default")
            if factor.choice is not None:
                row[factor.name] = factor.choice in (default or [])
                continue
            if isinstance(default, str) and "{" in default:
                default = _template(default).render(self.answers(row)).strip()
            row[factor.name] = default
            if not self.accepts(row):
                row[factor.name] = NOT_ASKED
        assert self.completion(dict(row)) == row, f"the defaults are refused: {row}"
        return row

    def covering_array(
        self, candidates: int = CANDIDATES, seed: int = SEED
    ) -> list[dict[str, Value]]:
        """Rows that hold every combination some accepted row can hold, the defaults first: the
        broad questions' combinations first, then the NARROW questions' values placed on them."""
        uncovered = {
            combination
            for combination in self.every_combination
            if not any(name in self.narrow for name, _ in combination)
        }
        rows = [self.default_row()]
        uncovered -= self.combinations_of(rows[0])
        sizes = {factor.name: len(factor.values) for factor in self.factors}
        rng = random.Random(seed)
        for required in self.required_rows:
            if not any(required.items() <= row.items() for row in rows):
                rows.append(self._grow(dict(required), uncovered, sizes, rng))
                uncovered -= self.combinations_of(rows[-1])

        def weight(combination: Combination) -> int:
            return math.prod(sizes[name] for name, _ in combination)

        while uncovered:
            # Candidates grown from uncovered combinations of the largest factors (they need the
            # most rows); the one that covers the most is kept.
            largest = max(weight(combination) for combination in uncovered)
            seeds = sorted((c for c in uncovered if weight(c) == largest), key=str)
            grown = [
                self._grow(dict(rng.choice(seeds)), uncovered, sizes, rng)
                for _ in range(candidates)
            ]
            row = max(grown, key=lambda row: len(self.combinations_of(row) & uncovered))
            rows.append(row)
            uncovered -= self.combinations_of(row)
        return self._place_narrow(rows)

    def _place_narrow(self, rows: list[dict[str, Value]]) -> list[dict[str, Value]]:
        """Give the NARROW factors other values than their defaults on the fewest rows that
        complete their combinations: each step changes the row (never the first, the defaults)
        that leaves the fewest combinations uncovered, the earliest on a tie."""
        for name in self.narrow:
            mine = {c for c in self.every_combination if any(n == name for n, _ in c)}

            def missing(candidate: list[dict[str, Value]], mine: set[Combination] = mine) -> int:
                return len(mine - set().union(*(self.combinations_of(row) for row in candidate)))

            while (left := missing(rows)) > 0:
                options = [
                    [*rows[:index], {**row, name: value}, *rows[index + 1 :]]
                    for index, row in enumerate(rows)
                    if index > 0 and row[name] == self.defaults[name]
                    for value in self.factor(name).values
                    if value != row[name] and self.accepts({**row, name: value})
                ]
                best = min(options, key=missing, default=None)
                if best is None or missing(best) >= left:
                    raise AssertionError(f"no row can take the values of {name} still missing")
                rows = best
        return rows

    def _grow(
        self,
        row: dict[str, Value],
        uncovered: set[Combination],
        sizes: Mapping[str, int],
        rng: random.Random,
    ) -> dict[str, Value]:
        """Give every other factor the value that completes the most uncovered combinations with
        the values chosen so far, among those the questionnaire still accepts (ties broken by
        the seeded generator, so the array is the same on every run)."""
        for name in self.narrow:
            row.setdefault(name, self.defaults[name])
        for factor in sorted(self.broad, key=lambda factor: (-sizes[factor.name], rng.random())):
            if factor.name in row:
                continue

            def gain(value: Value, factor: Factor = factor) -> int:
                return sum(
                    tuple((name, value if name == factor.name else row[name]) for name in group)
                    in uncovered
                    for group in self.groups_of[factor.name]
                    if all(name in row or name == factor.name for name in group)
                )

            for value in sorted(factor.values, key=lambda value: (-gain(value), rng.random())):
                if self.feasible({**row, factor.name: value}):
                    row[factor.name] = value
                    break
        return row

    def uncovered(self, rows: list[Mapping[str, Value]]) -> set[Combination]:
        """What some accepted row can hold and none of these rows holds."""
        covered: set[Combination] = set().union(*(self.combinations_of(row) for row in rows))
        return set(self.every_combination) - covered


def variant_name(data: Mapping[str, Value]) -> str:
    """A short readable name: framework, database, auth, the broker with Celery, Redis, GraphQL,
    real-time events, the admin site, the Flet client and Kubernetes."""
    parts = [data["framework"], data["database"], f"auth-{data['auth']}"]
    if data.get("celery"):
        parts.append(f"celery-{data['broker']}")
    if data.get("redis"):
        parts.append("shared-redis")
    if data.get("graphql"):
        parts.append("graphql")
    if data.get("realtime"):
        parts.append("realtime")
    if data.get("admin"):
        parts.append("admin")
    if data.get("client", "none") != "none":
        parts.append(str(data["client"]))
    if data.get("deploy") == "kubernetes":
        parts.append("kubernetes")
    return "-".join(parts)


QUESTIONNAIRE = Questionnaire(questions())


@cache
def variants() -> dict[str, dict[str, Value]]:
    """copier.yml's covering array as named answer sets: "default" first, then by their answers
    (a number added where two would share a name)."""
    named: dict[str, dict[str, Value]] = {}
    for index, row in enumerate(QUESTIONNAIRE.covering_array()):
        data = QUESTIONNAIRE.answers(row)
        name = base = "default" if index == 0 else variant_name(data)
        number = 2
        while name in named:
            name, number = f"{base}-{number}", number + 1
        named[name] = data
    return named


if __name__ == "__main__":
    table = variants()
    print(f"{len(table)} variants over {len(QUESTIONNAIRE.factors)} factors")
    for name, data in table.items():
        print(f"  {name}: {data}")
    rows = QUESTIONNAIRE.covering_array()
    total = len(QUESTIONNAIRE.every_combination)
    print(f"combinations left uncovered: {len(QUESTIONNAIRE.uncovered(rows))} of {total}")
