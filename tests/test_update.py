"""`copier update` from one release to the next keeps everything the team wrote.

The template repository is rebuilt in a temporary folder from this working tree with two release
tags: OLD is the tree as it is; NEW adds deliberate template changes (a heading edited in the
README, a new file, a file and a folder renamed with an entry in hooks/migrate.py, a line added to
`.env` and `.env.example`). A project generated from OLD gets the team's edits and commits, then
is updated to NEW, in-process and through the `copier` command line as the generated README says.
Paths are looked up rather than written out, so the template's layout can change under the tests.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jinja2
import pytest
import yaml
from copier import run_copy, run_update
from packaging.version import Version
from pytest_copie.plugin import Copie, Result

from .conftest import FULL_VARIANTS
from .harness import (
    BROKER_SERVER_VARIABLES,
    DATABASE_SERVER_VARIABLES,
    TEMPLATE_ROOT,
    assert_ok,
    background,
    copier_config,
    delete_broker_queue,
    documented_command,
    documented_commands,
    is_server_command,
    migration_files,
    render,
    run,
    scratch_broker_settings,
    scratch_database,
    serve,
)

OLD, NEW = "1.0.0", "1.1.0"
CONFLICT_START, CONFLICT_END = "<<<<<<< before updating", ">>>>>>> after updating"
TEAM_NOTES = "\n## Team notes\n\nOn-call rota lives in the wiki.\n"
TEAM_TEST = "\n\ndef test_team_owned_check() -> None:\n    assert 1 + 1 == 2\n"
TEAM_ENV = (
    "ENVIRONMENT=development\nDATABASE_URL=sqlite:///./team.db\nSECRET_KEY=team-local-secret\n"
)
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Team",
    "GIT_AUTHOR_EMAIL": "team@example.com",
    "GIT_COMMITTER_NAME": "Team",
    "GIT_COMMITTER_EMAIL": "team@example.com",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def files(root: Path) -> set[str]:
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def working_tree_files() -> list[str]:
    """The template as Copier sees this checkout: tracked and new files, not ignored ones."""
    listed = git(TEMPLATE_ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return sorted(name for name in set(listed.split("\0")) if (TEMPLATE_ROOT / name).is_file())


@dataclass
class Releases:
    """A template repository with tags OLD and NEW, and what NEW changed (as project paths)."""

    repo: Path
    heading: str  # a README heading that NEW rewrites
    new_heading: str
    added: str  # a file NEW adds
    renamed_file: tuple[str, str]  # NEW renames it (and puts a comment on its first line)
    renamed_folder: tuple[str, str]
    template_comment: str = "# Checks of the problem details."
    env_line: str = "# Added in 1.1.0: a setting the template now documents."


def _only(matches: list[Path], what: str) -> Path:
    assert len(matches) == 1, f"expected one {what} in the template, found {matches}"
    return matches[0]


@pytest.fixture(scope="session")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Releases:
    root = tmp_path_factory.mktemp("releases")
    repo = root / "copier-backend"
    for name in working_tree_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE_ROOT / name, repo / name)
    identity = ["-c", "user.name=Template Maintainer", "-c", "user.email=maintainer@example.com"]

    def commit_and_tag(tag: str) -> None:
        git(repo, "add", "--all", "--force")
        git(repo, *identity, "commit", "--quiet", "--no-verify", "-m", f"Release {tag}")
        git(repo, *identity, "tag", "-a", tag, "-m", tag)

    git(repo, "init", "--quiet", "--initial-branch=main")
    commit_and_tag(OLD)

    # Where things land in a project: render OLD once and look the files up.
    sample = root / "sample"
    run_copy(str(repo), sample, defaults=True, unsafe=True, skip_tasks=True, quiet=True)
    problems = _only(list(sample.rglob("test_problems.py")), "rendered test_problems.py")
    tests_dir = problems.parent.relative_to(sample).as_posix()
    assert (sample / tests_dir / "items").is_dir()

    template = repo / "template"
    readme = _only(list(template.glob("README.md*")), "README source")
    text = readme.read_text()
    heading = next(line for line in text.splitlines() if line.startswith("## ") and "{" not in line)
    new_heading = f"{heading} (revised in {NEW})"
    readme.write_text(text.replace(f"\n{heading}\n", f"\n{new_heading}\n", 1))
    (template / "CONTRIBUTING.md").write_text("# Contributing\n\nOpen a pull request.\n")
    # The source the sample's file came from (other frameworks may have their own): the one whose
    # path, rendered with the sample's answers, is the sample's file.
    answers = yaml.safe_load(_only(list(sample.glob(".copier-answers.yml")), "answers").read_text())

    def rendered_path(source: Path) -> str:
        path = source.relative_to(template).as_posix()
        return jinja2.Template(path).render(answers).removesuffix(".jinja")

    problems_source = _only(
        [
            path
            for path in template.rglob("test_problems.py*")
            if rendered_path(path) == f"{tests_dir}/test_problems.py"
        ],
        "test_problems.py source",
    )
    renamed_source = problems_source.with_name(
        problems_source.name.replace("test_problems.py", "test_problem_details.py")
    )
    problems_source.rename(renamed_source)
    releases = Releases(
        repo=repo,
        heading=heading,
        new_heading=new_heading,
        added="CONTRIBUTING.md",
        renamed_file=(f"{tests_dir}/test_problems.py", f"{tests_dir}/test_problem_details.py"),
        renamed_folder=(f"{tests_dir}/items", f"{tests_dir}/catalog"),
    )
    renamed_source.write_text(f"{releases.template_comment}\n{renamed_source.read_text()}")
    (problems_source.parent / "items").rename(problems_source.parent / "catalog")
    for name in (".env.jinja", ".env.example.jinja"):
        source = template / name
        source.write_text(source.read_text() + f"\n{releases.env_line}\n")
    migrate = repo / "hooks" / "migrate.py"
    empty = "RENAMES: list[Rename] = []\n"
    assert empty in migrate.read_text()
    entries = ", ".join(
        f"Rename({NEW!r}, {old!r}, {new!r})"
        for old, new in (releases.renamed_file, releases.renamed_folder)
    )
    migrate.write_text(migrate.read_text().replace(empty, f"RENAMES: list[Rename] = [{entries}]\n"))
    commit_and_tag(NEW)
    return releases


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Copier commits in scratch repositories during an update; give git a name to use."""
    for key, value in GIT_IDENTITY.items():
        monkeypatch.setenv(key, value)


def generate(releases: Releases, destination: Path, answers: dict[str, Any]) -> Path:
    """A team's project, generated from OLD and committed (post-copy is tested elsewhere)."""
    run_copy(
        str(releases.repo),
        destination,
        data=answers,
        vcs_ref=OLD,
        defaults=True,
        unsafe=True,
        skip_tasks=True,
        quiet=True,
    )
    git(destination, "init", "--quiet", "--initial-branch=main")
    commit(destination, "Start from copier-backend")
    return destination


def commit(project: Path, message: str) -> None:
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--no-verify", "-m", message)


def update_keeping_answers(copie: Copie, project: Path) -> None:
    """`copier update --defaults` to NEW with the answers the project recorded, through
    pytest-copie (its post-copy task is limited to `copier copy`; the migrations run)."""
    result = copie.update(Result(project_dir=project), vcs_ref=NEW)
    if result.exception is not None:
        raise result.exception


def update_changing_answers(
    project: Path, answers: dict[str, Any] | None = None, vcs_ref: str = NEW
) -> None:
    """An update that changes answers. pytest-copie's `copie.update` passes its answers as
    defaults, and Copier takes the project's recorded answers before those: it cannot change one.
    """
    run_update(
        project,
        data=answers or {},
        vcs_ref=vcs_ref,
        overwrite=True,
        unsafe=True,
        defaults=True,
        skip_tasks=True,
        quiet=True,
    )


def render_new(releases: Releases, destination: Path, answers: dict[str, Any]) -> Path:
    run_copy(
        str(releases.repo),
        destination,
        data=answers,
        vcs_ref=NEW,
        defaults=True,
        unsafe=True,
        skip_tasks=True,
        quiet=True,
    )
    return destination


def check_update(project: Path) -> int:
    return subprocess.run(
        [sys.executable, "-m", "copier", "check-update", "-q"],
        cwd=project,
        capture_output=True,
        check=False,
    ).returncode


def recorded_answers(project: Path) -> dict[str, Any]:
    answers: dict[str, Any] = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return answers


def conflict_files(project: Path) -> list[str]:
    """Files with a line that opens an inline conflict (the README mentions the marker inline)."""
    return sorted(
        name
        for name in files(project)
        if CONFLICT_START in (project / name).read_text(errors="replace").splitlines()
    )


@dataclass
class TeamEdits:
    """What a team does to its project between two template releases."""

    added: dict[str, str] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)


def edit_like_a_team(releases: Releases, project: Path) -> TeamEdits:
    """Changed lines, new files, a deleted file, local settings; committed, as copier requires."""
    edits = TeamEdits()
    readme = project / "README.md"
    readme.write_text(readme.read_text() + TEAM_NOTES)
    old_file, _ = releases.renamed_file
    (project / old_file).write_text((project / old_file).read_text() + TEAM_TEST)
    old_folder, _ = releases.renamed_folder
    api_test = project / old_folder / "test_api.py"
    api_test.write_text(api_test.read_text() + TEAM_TEST)
    edits.added = {
        "docs/decisions.md": "# Decisions\n\n1. We use the template.\n",
        f"{old_folder}/test_team_extras.py": '"""Checks the team added."""\n',
    }
    for name, text in edits.added.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    # NEW changes .env.example too: a file the team deleted must stay deleted.
    (project / ".env.example").unlink()
    edits.deleted = [".env.example"]
    commit(project, "Team work")
    (project / ".env").write_text(TEAM_ENV)  # git-ignored: never committed
    return edits


def moved(name: str, rename: tuple[str, str]) -> str:
    old, new = rename
    return new + name[len(old) :] if name == old or name.startswith(old + "/") else name


def test_team_edits_survive_and_template_changes_arrive(
    releases: Releases, tmp_path: Path, copie: Copie
) -> None:
    project = generate(releases, tmp_path / "service", {})
    edits = edit_like_a_team(releases, project)
    assert check_update(project) == 2

    update_keeping_answers(copie, project)

    readme = (project / "README.md").read_text()
    assert TEAM_NOTES in readme
    assert f"\n{releases.new_heading}\n" in readme
    assert f"\n{releases.heading}\n" not in readme
    assert (project / releases.added).is_file()
    for name, text in edits.added.items():
        target = moved(name, releases.renamed_folder)
        assert (project / target).read_text() == text, name
    for name in edits.deleted:
        assert not (project / name).exists(), f"{name} was deleted by the team and came back"
    # The renamed file and folder carry the team's lines and the template's changes.
    old_file, new_file = releases.renamed_file
    assert not (project / old_file).exists()
    renamed = (project / new_file).read_text()
    assert renamed.startswith(releases.template_comment + "\n")
    assert renamed.endswith(TEAM_TEST)
    old_folder, new_folder = releases.renamed_folder
    assert not (project / old_folder).exists()
    assert (project / new_folder / "test_api.py").read_text().endswith(TEAM_TEST)
    # `.env` belongs to the team: kept as it was, template change not applied.
    assert (project / ".env").read_text() == TEAM_ENV
    # Every file is either the new release's or the team's.
    expected = files(render_new(releases, tmp_path / "fresh", {})) - set(edits.deleted)
    expected |= {moved(name, releases.renamed_folder) for name in edits.added}
    assert files(project) == expected
    assert readme == (tmp_path / "fresh" / "README.md").read_text() + TEAM_NOTES
    assert conflict_files(project) == []
    assert recorded_answers(project)["_commit"] == NEW
    commit(project, f"Update to copier-backend {NEW}")
    assert check_update(project) == 0


def test_overlapping_edits_become_conflict_markers_with_a_message(
    releases: Releases, tmp_path: Path, capfd: pytest.CaptureFixture[str], copie: Copie
) -> None:
    project = generate(releases, tmp_path / "service", {})
    team_heading = f"{releases.heading} (team wording)"
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace(f"\n{releases.heading}\n", f"\n{team_heading}\n"))
    old_file, new_file = releases.renamed_file
    team_comment = "# Health checks, owned by the platform team."
    (project / old_file).write_text(f"{team_comment}\n{(project / old_file).read_text()}")
    commit(project, "Team wording")
    capfd.readouterr()

    update_keeping_answers(copie, project)

    for name, ours, theirs in (
        ("README.md", team_heading, releases.new_heading),
        (new_file, team_comment, releases.template_comment),
    ):
        text = (project / name).read_text()
        start, middle, end = (
            text.index(CONFLICT_START),
            text.index("\n=======\n"),
            text.index(CONFLICT_END),
        )
        assert start < text.index(ours) < middle < text.index(theirs) < end, name
    assert conflict_files(project) == sorted(["README.md", new_file])
    # The migration's own lines: Copier is not quiet here and adds its own on stderr (the
    # version, each task's command line).
    message = "".join(
        line
        for line in capfd.readouterr().err.splitlines(keepends=True)
        if line.startswith("[copier-backend] ")
    )
    # Said once: the migration runs once per update, unlike tasks.
    assert message.count("overlaps with your changes in 2 file(s)") == 1
    assert "  README.md\n" in message
    assert f"  {new_file}\n" in message
    assert "git reset --hard && git clean -fd" in message
    # Both are recorded as unmerged, as after a git merge: a commit is refused until resolved.
    unmerged = {line.split("\t")[1] for line in git(project, "ls-files", "--unmerged").splitlines()}
    assert unmerged == {"README.md", new_file}
    refused = subprocess.run(
        ["git", "commit", "-am", "Update"], cwd=project, capture_output=True, check=False
    )
    assert refused.returncode != 0
    leftover = subprocess.run(
        ["git", "diff", "--check"], cwd=project, capture_output=True, text=True, check=False
    )
    assert "conflict marker" in leftover.stdout
    # The documented undo brings back exactly the committed project.
    git(project, "reset", "--quiet", "--hard")
    git(project, "clean", "--quiet", "-fd")
    assert git(project, "status", "--porcelain") == ""
    assert recorded_answers(project)["_commit"] == OLD


@dataclass(frozen=True)
class AnswerChange:
    """An answer changed during an update, and a file that must appear or go with it."""

    before: dict[str, Any]
    after: dict[str, Any]
    must_appear: tuple[str, ...] = ()
    must_go: tuple[str, ...] = ()


# One case per question whose change adds or removes files; a new option is one more entry.
ANSWER_CHANGES = {
    "agent-files-swap-claude-for-copilot-and-cursor": AnswerChange(
        before={"agent_files": ["agents_md", "claude"]},
        after={"agent_files": ["agents_md", "copilot", "cursor"]},
        must_appear=(".github/copilot-instructions.md", ".cursor/rules/backend.mdc"),
        must_go=("CLAUDE.md", ".claude"),
    ),
    "ci-github-to-gitlab": AnswerChange(
        before={"ci": "github"},
        after={"ci": "gitlab"},
        must_appear=(".gitlab-ci.yml",),
        must_go=(".github",),
    ),
    "docker-off": AnswerChange(
        before={"docker": True},
        after={"docker": False},
        must_go=("Dockerfile", "compose.yaml", ".dockerignore"),
    ),
    "celery-off": AnswerChange(
        before={"celery": True, "broker": "redis"},
        after={"celery": False},
        must_go=("celery_app.py", "worker.py", "tasks.py", "queued.py"),
    ),
}


@pytest.mark.parametrize("change", ANSWER_CHANGES.values(), ids=ANSWER_CHANGES.keys())
def test_changed_answers_add_and_remove_files_and_keep_team_edits(
    releases: Releases, tmp_path: Path, change: AnswerChange
) -> None:
    project = generate(releases, tmp_path / "service", change.before)
    readme = project / "README.md"
    readme.write_text(readme.read_text() + TEAM_NOTES)
    (project / "docs").mkdir()
    (project / "docs" / "decisions.md").write_text("# Decisions\n")
    commit(project, "Team work")

    update_changing_answers(project, change.after)

    before = files(render_new(releases, tmp_path / "before", change.before))
    after = files(render_new(releases, tmp_path / "after", change.after))
    assert files(project) == after | {"docs/decisions.md"}
    assert before - after, "the change should drop files"
    for name in before - after:
        assert not (project / name).exists(), name
    for name in change.must_appear:
        assert (project / name).is_file(), name
    for name in change.must_go:
        assert not list(project.rglob(name)), f"{name} should be gone"
    # The README follows the new answers and keeps the team's section.
    assert readme.read_text() == (tmp_path / "after" / "README.md").read_text() + TEAM_NOTES
    recorded = recorded_answers(project)
    assert recorded["_commit"] == NEW
    for name, value in change.after.items():
        assert recorded[name] == value


REFUSED_CHANGES = {
    "auth": ({"auth": "jwt"}, {"auth": "none"}, "the users table and the owner of every item"),
    "framework": ({}, {"framework": "django"}, "belong to one framework"),
    "project_slug": ({}, {"project_slug": "renamed_service"}, "src/my_service/"),
}


@pytest.mark.parametrize(
    ("before", "after", "reason"), REFUSED_CHANGES.values(), ids=REFUSED_CHANGES.keys()
)
def test_an_answer_a_deployed_project_cannot_change_is_refused_and_nothing_is_lost(
    releases: Releases,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    before: dict[str, Any],
    after: dict[str, Any],
    reason: str,
) -> None:
    project = generate(releases, tmp_path / "service", before)
    readme = project / "README.md"
    readme.write_text(readme.read_text() + TEAM_NOTES)
    commit(project, "Team work")
    committed = {name: (project / name).read_bytes() for name in files(project)}

    with pytest.raises(Exception, match="returned non-zero exit status 1"):
        update_changing_answers(project, after)

    message = capfd.readouterr().err
    assert "changes answers a generated project cannot change" in message
    assert reason in message
    assert {name: (project / name).read_bytes() for name in files(project)} == committed
    assert git(project, "status", "--porcelain") == ""


@pytest.mark.parametrize("auth", ["jwt", "none"])
def test_env_is_local_protected_and_in_step_with_the_example(tmp_path: Path, auth: str) -> None:
    """`.env` is git-ignored, skipped by updates, and only repeats what the example sets."""
    project = render(tmp_path / "service", {"auth": auth})

    def assignments(name: str) -> set[str]:
        lines = (project / name).read_text().splitlines()
        return {line for line in lines if "=" in line and not line.startswith("#")}

    assert assignments(".env")
    assert assignments(".env") <= assignments(".env.example")
    assert any(line.startswith("ACCESS_TOKEN_EXPIRE_MINUTES=") for line in assignments(".env")) == (
        auth == "jwt"
    )
    # DATABASE_URL stays unset: set, it would move the generated tests off their SQLite files.
    assert not any(line.startswith("DATABASE_URL") for line in assignments(".env"))
    assert ".env" in (project / ".gitignore").read_text().splitlines()
    assert ".env" in copier_config()["_skip_if_exists"]


def readme_copier_commands(project: Path) -> list[str]:
    """The copier commands the generated README gives, in the order it gives them."""
    return re.findall(r"`(uvx copier [^`]+)`", (project / "README.md").read_text())


def as_installed_copier(command: str) -> list[str]:
    """`uvx copier ...` with this environment's copier (the version the template is tested with)."""
    words = shlex.split(command)
    assert words[:2] == ["uvx", "copier"], command
    return [sys.executable, "-m", "copier", *words[2:]]


def test_readme_update_commands_work_through_the_command_line(
    releases: Releases, tmp_path: Path
) -> None:
    """As a user would: the README's commands, with the post-copy task allowed to run."""
    project = generate(releases, tmp_path / "service", {})
    readme = project / "README.md"
    readme.write_text(readme.read_text() + TEAM_NOTES)
    commit(project, "Team notes")
    commands = readme_copier_commands(project)
    check, update_command = (
        next(command for command in commands if " check-update" in command),
        next(command for command in commands if " update " in command),
    )
    assert "--trust" in update_command

    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            as_installed_copier(command),
            cwd=project,
            env={key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    before = run(check)
    assert before.returncode == 0, before.stderr
    assert f"latest version is {NEW}" in before.stdout
    assert check_update(project) == 2

    result = run(update_command)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Updating to template version {NEW}" in result.stderr
    # The one-time post-copy step is guarded to `copier copy`: it must not run (lock, commit).
    assert "[copier-backend] Setting up" not in result.stdout + result.stderr
    assert not (project / "uv.lock").exists()
    assert git(project, "log", "--format=%s").splitlines() == [
        "Team notes",
        "Start from copier-backend",
    ]
    assert TEAM_NOTES in readme.read_text()
    assert f"\n{releases.new_heading}\n" in readme.read_text()
    assert recorded_answers(project)["_commit"] == NEW
    assert conflict_files(project) == []
    commit(project, f"Update to copier-backend {NEW}")
    assert check_update(project) == 0


CHANGELOG = TEMPLATE_ROOT / "CHANGELOG.md"


def changelog_sections() -> list[str]:
    return re.findall(r"^## (\S+)", CHANGELOG.read_text(), flags=re.MULTILINE)


def test_changelog_sections_are_releases_newest_first() -> None:
    """An optional "Unreleased" section, then one per release, PEP 440 versions in normal form."""
    sections = changelog_sections()
    assert sections, "CHANGELOG.md has no sections"
    releases = sections[1:] if sections[0] == "Unreleased" else sections
    versions = [Version(section) for section in releases]
    assert [str(version) for version in versions] == releases
    assert versions == sorted(versions, reverse=True)
    assert len(set(versions)) == len(versions)
    if releases:
        pyproject = tomllib.loads((TEMPLATE_ROOT / "pyproject.toml").read_text())
        assert pyproject["project"]["version"] == releases[0]


def test_every_release_tag_and_rename_has_a_changelog_section(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sections = set(changelog_sections())
    for tag in git(TEMPLATE_ROOT, "tag", "--list").split():
        if re.fullmatch(r"\d+(\.\d+)*((a|b|rc)\d+)?", tag):
            assert tag in sections, f"release tag {tag} has no CHANGELOG.md section"
    spec = importlib.util.spec_from_file_location("migrate", TEMPLATE_ROOT / "hooks" / "migrate.py")
    assert spec is not None
    assert spec.loader is not None
    migrate = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "migrate", migrate)
    spec.loader.exec_module(migrate)
    for rename in migrate.RENAMES:
        assert rename.version in sections, f"{rename} is not in a CHANGELOG.md release"


# --- A deployed database across an update that changes an answer --------------------------------


def documented(project: Path, purpose: str) -> str:
    return documented_command((project / "README.md").read_text(), purpose)


def team_column(project: Path, framework: str) -> None:
    """The team adds a column to items, as a team does after generating."""
    models = project / "src" / "my_service" / "items" / "models.py"
    text = models.read_text()
    if framework == "django":
        anchor = "    description = models.TextField("
        line = "    team_note = models.CharField(max_length=100, null=True, blank=True)\n"
    else:
        anchor = "    description: Mapped[str | None] = mapped_column(Text)"
        line = "    team_note: Mapped[str | None] = mapped_column(String(100))\n"
    start = text.index(anchor)
    end = text.index("\n", start) + 1
    models.write_text(text[:end] + line + text[end:])


@pytest.mark.parametrize("framework", ["fastapi", "flask", "django"])
def test_turning_celery_on_keeps_a_deployed_postgresql_database_and_its_history(
    releases: Releases, tmp_path: Path, framework: str
) -> None:
    """Generate without Celery on PostgreSQL, migrate, keep data, add a team migration; update
    with celery=true: no migration is rewritten, the documented migration command applies on
    top, the old user and item are there, and a new registration's welcome email is sent by the
    documented worker."""
    database_server = os.environ.get(DATABASE_SERVER_VARIABLES["postgresql"])
    broker_server = os.environ.get(BROKER_SERVER_VARIABLES["redis"])
    if not database_server or not broker_server:
        pytest.skip("set COPIER_BACKEND_POSTGRESQL_URL and COPIER_BACKEND_REDIS_URL to check it")
    answers = {"framework": framework, "database": "postgresql", "auth": "jwt", "celery": False}
    with scratch_database(database_server) as database_url:
        project = generate(releases, tmp_path / "service", answers)
        env_file = project / ".env"
        env_file.write_text(f"ENVIRONMENT=development\nDATABASE_URL={database_url}\n")
        for command in ("uv sync", documented(project, "database schema")):
            assert_ok(run(command, project), command)
        readme = (project / "README.md").read_text()
        server = next(c for c in documented_commands(readme) if is_server_command(c))
        with serve(server, project) as live, httpx.Client(base_url=live.base_url) as client:
            old_user = {"email": "first@example.com", "password": "correct horse battery"}
            assert client.post("/api/v1/auth/register", json=old_user).status_code == 201
            headers = bearer(client, old_user)
            item = client.post("/api/v1/items", json={"name": "kept"}, headers=headers)
            assert item.status_code == 201, item.text
        # The team's own migration, on top of the template's, applied and committed.
        team_column(project, framework)
        write = documented(project, "write a migration").replace("describe the change", "team")
        for command in (write, documented(project, "database schema")):
            assert_ok(run(command, project), command)
        commit(project, "Team: a note on items")
        migrations_before = migration_sources(project)

        broker = scratch_broker_settings("redis", broker_server)
        try:
            update_changing_answers(project, {"celery": True, "broker": "redis"}, vcs_ref=OLD)
            assert conflict_files(project) == []
            # Nothing the database has applied was rewritten, and nothing new is needed.
            assert migration_sources(project) == migrations_before
            env_file.write_text(
                env_file.read_text() + "".join(f"{k}={v}\n" for k, v in broker.items())
            )
            for command in (
                "uv lock",
                "uv sync",
                documented(project, "database schema"),
                documented(project, "models and the migrations agree"),
            ):
                assert_ok(run(command, project), command)
            with (
                serve(server, project) as live,
                httpx.Client(base_url=live.base_url) as client,
                background(documented(project, "Celery worker"), project) as worker,
            ):
                headers = bearer(client, old_user)
                listed = client.get("/api/v1/items", headers=headers).json()
                assert [entry["name"] for entry in listed["items"]] == ["kept"]
                worker.wait_for(" ready.")
                new_user = {"email": "second@example.com", "password": "correct horse battery"}
                assert client.post("/api/v1/auth/register", json=new_user).status_code == 201
                worker.wait_for("second@example.com")
                assert "email.sent" in worker.log()
                assert "first@example.com" not in worker.log()
        finally:
            delete_broker_queue(project, broker)


def bearer(client: httpx.Client, user: dict[str, str]) -> dict[str, str]:
    token = client.post(
        "/api/v1/auth/token", data={"username": user["email"], "password": user["password"]}
    )
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def migration_sources(project: Path) -> dict[str, bytes]:
    """Every migration file of the project, by path, with its bytes."""
    return {
        path.relative_to(project).as_posix(): path.read_bytes() for path in migration_files(project)
    }


def test_no_answer_an_update_may_change_changes_a_migration(shared_render) -> None:
    """The migrations a project renders depend on its framework and auth only, the answers an
    update refuses to change: across the fully run variants (every value of every other answer
    with each framework), those of one framework and auth are the same files, byte for byte."""
    groups: dict[tuple[str, str], list[tuple[str, dict[str, bytes]]]] = {}
    for name, answers in FULL_VARIANTS.items():
        key = (answers["framework"], answers["auth"])
        groups.setdefault(key, []).append((name, migration_sources(shared_render(answers))))
    for key, members in groups.items():
        first_name, first = members[0]
        assert first, f"{first_name} renders no migration"
        for name, sources in members[1:]:
            assert sources == first, f"{name} and {first_name} ({key}) render other migrations"
    # Each framework and auth is compared across several variants (celery on and off among them).
    assert all(len(members) >= 2 for members in groups.values()), groups.keys()
