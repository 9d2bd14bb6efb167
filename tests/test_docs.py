"""The documentation names every question and every choice, so it cannot drift from copier.yml."""

from .harness import TEMPLATE_ROOT, choice_values, copier_config, questions

OPTIONS = (TEMPLATE_ROOT / "docs" / "options.md").read_text()


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
    import subprocess
    import sys

    for args in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "tests", "hooks"],
            cwd=TEMPLATE_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
