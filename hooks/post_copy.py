"""Post-copy setup of a generated project: git repository, uv.lock, first commit.

Run by Copier as a task after the first copy (never during `copier update`), with the new
project as the working directory; its arguments are the commands to suggest as next steps.
Every step that cannot run is skipped with a message saying what to run instead; the project
itself has already been rendered.
"""

from __future__ import annotations

import os
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


def lock_dependencies() -> bool:
    if shutil.which("uv") is None:
        say("uv not found: skipped locking. Install uv (docs.astral.sh/uv), then run: uv lock")
        return False
    say("Locking dependencies with `uv lock` ...")
    for attempt in (("uv", "lock"), ("uv", "lock", "--offline")):
        try:
            result = run(*attempt, timeout=LOCK_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            say(f"`{' '.join(attempt)}` timed out after {LOCK_TIMEOUT_SECONDS} s.")
            continue
        if result.returncode == 0:
            how = " from uv's cache (offline)" if "--offline" in attempt else ""
            say(f"Wrote uv.lock{how}.")
            return True
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        say(f"`{' '.join(attempt)}` failed: {last_line}")
    say("Could not lock dependencies (offline and not in uv's cache). When online, run: uv lock")
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


def main(next_steps: list[str]) -> int:
    project = Path.cwd()
    say(f"Setting up {project.name} ...")
    created_repository = init_git()
    locked = lock_dependencies()
    if created_repository:
        first_commit()
    say("Next steps:")
    say(f"  cd {project}")
    if not locked:
        say("  uv lock")
    for step in next_steps:
        say(f"  {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
