"""Post-copy setup of a generated project: git repository, uv.lock, first commit.

Run by Copier as a task after the first copy (never during `copier update`), with the new
project as the working directory; its arguments are the commands to suggest as next steps.
Every step that cannot run is skipped with a message saying what to run instead; the project
itself has already been rendered.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

LOCK_TIMEOUT_SECONDS = 300


def say(message: str) -> None:
    print(f"[copier-backend] {message}", flush=True)


def run(*command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # The project is not the caller's virtual environment; uv must not use or warn about it.
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def inside_git_work_tree() -> bool:
    result = run("git", "rev-parse", "--is-inside-work-tree")
    return result.returncode == 0 and result.stdout.strip() == "true"


def init_git() -> bool:
    """Start a repository unless the project already sits inside one. True if we created it."""
    if shutil.which("git") is None:
        say("git not found: skipped `git init`. Install git, then run: git init")
        return False
    if inside_git_work_tree():
        say("Already inside a git repository: left it as it is.")
        return False
    result = run("git", "init", "--quiet", "--initial-branch=main")
    if result.returncode != 0:
        say(f"`git init` failed, skipped: {result.stderr.strip()}")
        return False
    say("Created a git repository (branch main).")
    return True


def lock_dependencies(folder: str = ".") -> bool:
    """`uv lock` in `folder` (the project, or its client/), from uv's cache when offline."""
    command = ("uv", "lock") if folder == "." else ("uv", "lock", "--directory", folder)
    shown = " ".join(command)
    lock_file = Path(folder) / "uv.lock"
    if shutil.which("uv") is None:
        say(f"uv not found: skipped locking. Install uv (docs.astral.sh/uv), then: {shown}")
        return False
    say(f"Locking dependencies with `{shown}` ...")
    for attempt in (command, (*command, "--offline")):
        try:
            result = run(*attempt, timeout=LOCK_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            say(f"`{' '.join(attempt)}` timed out after {LOCK_TIMEOUT_SECONDS} s.")
            continue
        if result.returncode == 0:
            how = " from uv's cache (offline)" if "--offline" in attempt else ""
            say(f"Wrote {lock_file}{how}.")
            return True
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        say(f"`{' '.join(attempt)}` failed: {last_line}")
    say(f"Could not lock dependencies (offline and not in uv's cache). When online, run: {shown}")
    return False


def first_commit() -> None:
    email = run("git", "config", "user.email").stdout.strip()
    name = run("git", "config", "user.name").stdout.strip()
    if not (email and name):
        say("No git identity configured: skipped the first commit. Commit when ready:")
        say('  git add -A && git commit -m "Start from copier-backend"')
        return
    run("git", "add", "--all")
    result = run("git", "commit", "--quiet", "--no-verify", "-m", "Start from copier-backend")
    if result.returncode == 0:
        say("Made the first commit.")
    else:
        say(f"First commit failed: {result.stderr.strip() or result.stdout.strip()}")


ANSWERS_FILE = Path(".copier-answers.yml")
SOURCE_LINE = re.compile(r"^_src_path: *(?P<source>.*?) *$", re.MULTILINE)
# Sources Copier reaches from anywhere: a URL, or a repository host's short form.
URL = re.compile(r"^([a-z][a-z0-9+.-]*://|gh:|gl:|[\w.-]+@[\w.-]+:)", re.IGNORECASE)


def template_location() -> Path:
    """Where the template came from on this machine, as an absolute path. Copier renders a local
    git repository from a temporary clone of it (`copier._vcs.clone.*`), whose `origin` is the
    repository's absolute path; any other template folder is rendered where it is."""
    here = Path(__file__).resolve().parents[1]
    if here.name.startswith("copier."):
        origin = run("git", "-C", str(here), "remote", "get-url", "origin").stdout.strip()
        if origin and Path(origin).is_absolute():
            return Path(origin)
    return here


def record_a_reachable_source() -> None:
    """`copier update` and the CI's drift check read the template's location from the answers
    file. A relative path (`copier copy . ../service`) would be looked up from inside the
    project, where it names the project itself: record the absolute path instead, and say that
    a team's CI needs the repository's URL."""
    if not ANSWERS_FILE.is_file():
        return
    text = ANSWERS_FILE.read_text()
    match = SOURCE_LINE.search(text)
    if match is None:
        return
    source = match["source"].strip("'\"")
    if URL.match(source):
        return
    if not Path(source).is_absolute():
        location = template_location()
        if not (location / "copier.yml").is_file():
            say(
                f"The template's location was recorded as the relative path `{source}`, which "
                "`copier update` cannot find from inside the project. Set `_src_path` in "
                f"{ANSWERS_FILE} to the template's absolute path or its repository URL."
            )
            return
        ANSWERS_FILE.write_text(
            text[: match.start()] + f"_src_path: {location}" + text[match.end() :]
        )
        say(
            f"The template was given as the relative path `{source}`, which `copier update` "
            f"would look up from inside the project: recorded its absolute path, {location}."
        )
    say(
        "The template's location is a path on this machine: updates work here, but a CI runner "
        "cannot reach it. For a team's project, generate from the repository's URL "
        "(`copier copy --trust gh:your-org/copier-backend my-service`), or set `_src_path` in "
        f"{ANSWERS_FILE} to it."
    )


def main(next_steps: list[str]) -> int:
    project = Path.cwd()
    say(f"Setting up {project.name} ...")
    record_a_reachable_source()
    created_repository = init_git()
    locked = lock_dependencies()
    client_locked = not Path("client/pyproject.toml").is_file() or lock_dependencies("client")
    if created_repository:
        first_commit()
    say("Next steps:")
    say(f"  cd {project}")
    if not locked:
        say("  uv lock")
    if not client_locked:
        say("  uv lock --directory client")
    for step in next_steps:
        say(f"  {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
