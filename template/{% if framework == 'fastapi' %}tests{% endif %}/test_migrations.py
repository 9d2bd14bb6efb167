"""The migrations build the schema the models describe, and undo it."""

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def alembic_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'migrations.db'}")
    config = Config(PROJECT_ROOT / "alembic.ini")
    config.attributes["configure_logger"] = False
    return config


def test_upgrade_to_head_matches_the_models(alembic_config: Config) -> None:
    command.upgrade(alembic_config, "head")
    # Fails with the list of differences if a model changed without a migration.
    command.check(alembic_config)


def test_downgrade_to_base_and_back(alembic_config: Config) -> None:
    command.upgrade(alembic_config, "head")
    command.downgrade(alembic_config, "base")
    command.upgrade(alembic_config, "head")
    command.check(alembic_config)


def test_history_is_linear(alembic_config: Config) -> None:
    heads = ScriptDirectory.from_config(alembic_config).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}; run `alembic merge heads`"


def test_a_bad_database_url_stops_with_one_line(
    alembic_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "not a url")
    with pytest.raises(SystemExit, match=r"^Invalid configuration: DATABASE_URL is not a"):
        command.upgrade(alembic_config, "head")
