"""The fully run variants cover every pair of option values, and follow copier.yml."""

import itertools

import pytest

from .conftest import FULL_VARIANTS
from .covering import NARROW, NOT_ASKED, QUESTIONNAIRE, Questionnaire
from .harness import answer_refusal, choice_values, questions


def test_the_full_variants_hold_every_pair_of_option_values() -> None:
    """Checked from copier.yml directly, not through the covering code: for every two choice
    questions (each choice of a multiselect on or off) and every two values of theirs, a full
    variant has both, or the questionnaire refuses or never asks the pair."""
    choices: dict[str, list[object]] = {}
    for name, spec in questions().items():
        if spec.get("multiselect"):
            for choice in choice_values(spec):
                choices[f"{name}:{choice}"] = [True, False]
        elif spec.get("type") == "bool":
            choices[name] = [True, False]
        elif spec.get("choices"):
            choices[name] = choice_values(spec)

    def holds(answers: dict[str, object], factor: str, value: object) -> bool:
        question, _, choice = factor.partition(":")
        if choice:
            return (choice in answers[question]) == value  # type: ignore[operator]
        return answers.get(question) == value

    missing = [
        ((a, x), (b, y))
        for a, b in itertools.combinations(choices, 2)
        for x in choices[a]
        for y in choices[b]
        if not any(
            holds(answers, a, x) and holds(answers, b, y) for answers in FULL_VARIANTS.values()
        )
    ]

    def apart(first: str, second: str) -> bool:
        """A NARROW question and one its code does not meet (the client and the database)."""
        one, other = first.partition(":")[0], second.partition(":")[0]
        return any(
            question in NARROW and partner not in NARROW[question]
            for question, partner in ((one, other), (other, one))
        )

    # What no variant holds: an answer to broker without Celery, to deploy without Docker, or to
    # admin without users (not asked); Claude Code without AGENTS.md (refused: CLAUDE.md imports
    # it); Kubernetes with SQLite as the database or the broker (refused: replicas cannot share
    # its file); real-time events on MySQL without Redis (refused: nothing would carry the events
    # between processes); a NARROW question with one its code does not meet (not paired).
    assert answer_refusal("agent_files", ["claude"])
    for (a, x), (b, y) in missing:
        pair = {a: x, b: y}
        assert (
            (pair.get("celery") is False and "broker" in pair)
            or (pair.get("docker") is False and "deploy" in pair)
            or (pair.get("auth") == "none" and "admin" in pair)
            or (
                pair.get("agent_files:claude") is True
                and pair.get("agent_files:agents_md") is False
            )
            or (
                pair.get("deploy") == "kubernetes"
                and "sqlite" in (pair.get("database"), pair.get("broker"))
            )
            or apart(a, b)
        ), f"no full variant holds {pair}"


def test_every_frameworks_real_time_fan_outs_are_fully_run() -> None:
    """Each flavour writes its own fan-outs: each runs real-time events with Redis and on
    PostgreSQL without it (LISTEN/NOTIFY), with the Docker image for the production-process check
    of tests/contract/test_realtime.py where it can."""
    fan_outs = {
        (answers["framework"], "redis" if answers.get("redis") else answers["database"])
        for answers in FULL_VARIANTS.values()
        if answers.get("realtime")
    }
    for framework in choice_values(questions()["framework"]):
        assert {(framework, "redis"), (framework, "postgresql")} <= fan_outs, framework
    shared = {
        (answers["framework"], "redis" if answers.get("redis") else answers["database"])
        for answers in FULL_VARIANTS.values()
        if answers.get("realtime") and answers.get("docker", True)
    }
    assert {"redis", "postgresql"} <= {fan_out for _, fan_out in shared}


def test_every_framework_auth_and_celery_combination_is_fully_run() -> None:
    held = {(a["framework"], a["auth"], a["celery"]) for a in FULL_VARIANTS.values()}
    frameworks = choice_values(questions()["framework"])
    auths = choice_values(questions()["auth"])
    assert held == set(itertools.product(frameworks, auths, [True, False]))


def test_the_first_full_variant_is_the_default_answers() -> None:
    name, answers = next(iter(FULL_VARIANTS.items()))
    assert name == "default"
    for question, spec in questions().items():
        if question in answers and "{" not in str(spec.get("default")):
            assert answers[question] == spec["default"], question


def test_the_array_is_as_small_as_the_largest_pair_of_questions_allows() -> None:
    """At least as many rows as the two largest factors have values together (4 x 4); the
    greedy search keeps within three of that (the triples ask for rows that pairs alone would
    not: with framework x auth x graphql beside x celery, no seed of the first 40 gives fewer
    than 19)."""
    sizes = sorted(len(factor.values) for factor in QUESTIONNAIRE.factors)
    assert sizes[-1] * sizes[-2] <= len(FULL_VARIANTS) <= sizes[-1] * sizes[-2] + 3


TOY = {
    "name": {"type": "str", "default": "x"},
    "shape": {"type": "str", "choices": ["circle", "square", "star"], "default": "circle"},
    "filled": {"type": "bool", "default": False},
    "fill": {
        "type": "str",
        "when": "{{ filled }}",
        "choices": {"Red": "red", "Blue": "blue"},
        "default": "red",
    },
    "tags": {
        "type": "str",
        "multiselect": True,
        "choices": ["a", "b"],
        "default": ["a"],
        "validator": "{% if 'b' in tags and 'a' not in tags %}b needs a{% endif %}",
    },
}


@pytest.mark.parametrize("extra_shape", [False, True], ids=["as-is", "new-choice"])
def test_a_questionnaire_gets_a_covering_array_that_obeys_when_and_validators(
    extra_shape: bool,
) -> None:
    specs = {**TOY}
    if extra_shape:
        specs["shape"] = {**TOY["shape"], "choices": ["circle", "square", "star", "hexagon"]}
    toy = Questionnaire(specs, triples=[])
    rows = toy.covering_array()
    assert toy.uncovered(rows) == set()
    assert rows[0] == {
        "shape": "circle",
        "filled": False,
        "fill": NOT_ASKED,
        "tags:a": True,
        "tags:b": False,
    }
    for row in rows:
        answers = toy.answers(row)
        assert ("fill" in answers) == answers["filled"]
        assert not ("b" in answers["tags"] and "a" not in answers["tags"])
    shapes = {row["shape"] for row in rows}
    assert ("hexagon" in shapes) == extra_shape
    # Every pair the toy allows: the fills with filled, unasked without, tags but "b alone".
    assert (("filled", False), ("fill", "red")) not in toy.every_combination
    assert (("shape", "star"), ("fill", "blue")) in toy.every_combination
    assert (("tags:a", False), ("tags:b", True)) not in toy.every_combination
