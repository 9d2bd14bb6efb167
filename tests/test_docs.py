"""The documentation names every question and every choice, so it cannot drift from copier.yml."""

from .harness import TEMPLATE_ROOT, copier_config, questions

OPTIONS = (TEMPLATE_ROOT / "docs" / "options.md").read_text()


def test_every_question_and_choice_is_documented() -> None:
    for name, spec in questions().items():
        assert f"`{name}`" in OPTIONS, name
        choices = spec.get("choices") or {}
        values = choices.values() if isinstance(choices, dict) else choices
        for value in values:
            assert f"`{value}`" in OPTIONS, f"{name}: {value}"


def test_every_computed_value_is_documented() -> None:
    computed = [
        name
        for name, spec in copier_config().items()
        if isinstance(spec, dict) and spec.get("when") is False
    ]
    for name in computed:
        assert f"`{name}`" in OPTIONS, name
