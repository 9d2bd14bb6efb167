"""Version migrations of a generated project, run by Copier after `copier update` applied a release.

Copier runs this from the project folder once the new release has been rendered and the team's
changes merged into it, with the two versions in the environment (VERSION_PEP440_FROM and
VERSION_PEP440_TO, set by Copier). It does two things:

1. Renames. Copier sees a file the template renamed as one file deleted and another added: edits
   the team made to the old file would stay only in git history. For every entry of RENAMES
   between the two versions, the team's changes to the old path (file or folder) are merged into
   the new path, three-way, against the old release rendered with the old answers; files the
   team added under a renamed folder move with it; a file the team deleted stays deleted.
2. Answers that cannot change. An update that changes `framework`, `auth` or `project_slug` is
   undone (the project is put back as it was committed) and refused with the reason: see
   FIXED_ANSWERS. Every other answer can change; its files and migrations apply on top of the
   project's history.
3. Conflicts. Copier writes inline conflict markers without saying so. Every file left with
   markers (or a .rej file) is named, with how to resolve the conflict or undo the update.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from copier import run_copy
from packaging.version import Version

ANSWERS_FILE = ".copier-answers.yml"
# The labels Copier gives the three sides of an inline conflict; renamed files use the same.
LABELS = ("before updating", "last update", "after updating")
CONFLICT_START = f"<<<<<<< {LABELS[0]}"
CONFLICT_END = f">>>>>>> {LABELS[2]}"


@dataclass(frozen=True)
class Rename:
    """In release `version` the template moved `old` to `new` (project paths, file or folder).

    Paths may use the answers as placeholders, for example "src/{project_slug}/users".
    """

    version: str
    old: str
    new: str


# Every rename the template has made, oldest first. A release that renames or moves a generated
# file adds an entry here in the same commit.
RENAMES: list[Rename] = []


# Answers an update may not change, and why: each would rewrite what a deployed project already
# has in its database or replace the team's code instead of updating it.
FIXED_ANSWERS = {
    "framework": (
        "every file of the project and its database's migration history belong to one "
        "framework; to move, generate a new project and bring your code and data across"
    ),
    "auth": (
        "the users table and the owner of every item are in the project's first migration, "
        "which a deployed database has already applied; to change it, generate a new project "
        "and move the data, or write the migration yourself"
    ),
    "project_slug": (
        "Copier would delete src/{old}/ with your changes and render src/{new}/ afresh; "
        "rename the package yourself if you must, and keep project_slug as it is"
    ),
}


def say(message: str) -> None:
    print(f"[copier-backend] {message}", file=sys.stderr, flush=True)


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True)


def renames_between(old_version: Version, new_version: Version) -> list[Rename]:
    return [rename for rename in RENAMES if old_version < Version(rename.version) <= new_version]


def answers_before_update() -> dict[str, Any]:
    """The answers as last committed (Copier updates only projects without uncommitted changes)."""
    text = git("show", f"HEAD:./{ANSWERS_FILE}").stdout
    answers: dict[str, Any] = yaml.safe_load(text)
    return answers


def render_previous_release(answers: dict[str, Any], destination: Path) -> None:
    """The old release with the old answers: the common ancestor of the three-way merge."""
    run_copy(
        str(answers["_src_path"]),
        destination,
        data={name: value for name, value in answers.items() if not name.startswith("_")},
        vcs_ref=str(answers["_commit"]),
        defaults=True,
        overwrite=True,
        skip_tasks=True,
        quiet=True,
        unsafe=True,  # the user trusted this template to run this very script
    )


def committed_files(path: str) -> list[str]:
    """Files under `path` (or `path` itself) in the last commit, relative to the project."""
    listed = git("ls-tree", "-r", "--name-only", "HEAD", "--", path).stdout
    return [name for name in listed.splitlines() if name == path or name.startswith(path + "/")]


def committed_text(path: str) -> bytes:
    return subprocess.run(["git", "show", f"HEAD:./{path}"], capture_output=True, check=True).stdout


def merge_into(target: Path, ours: bytes, base: bytes) -> None:
    """Three-way merge of the team's old file (ours) into the new release's file (target).

    Overlapping changes become inline conflict markers and, as Copier does for the files it
    merges, the file is recorded as unmerged in git, so that a commit is refused until it is
    resolved and added.
    """
    theirs = target.read_bytes()
    with tempfile.TemporaryDirectory() as scratch:
        ours_path, base_path = Path(scratch, "ours"), Path(scratch, "base")
        ours_path.write_bytes(ours)
        base_path.write_bytes(base)
        labels = [arg for label in LABELS for arg in ("-L", label)]
        result = subprocess.run(
            ["git", "merge-file", "-p", *labels, str(ours_path), str(base_path), str(target)],
            capture_output=True,
            check=False,
        )
    if result.returncode < 0 or result.returncode > 127:
        raise RuntimeError(f"git merge-file failed on {target}: {result.stderr.decode()}")
    target.write_bytes(result.stdout)
    if result.returncode > 0:
        record_unmerged(target, base=base, ours=ours, theirs=theirs)


def record_unmerged(path: Path, *, base: bytes, ours: bytes, theirs: bytes) -> None:
    """Index stages 1 (base), 2 (ours) and 3 (theirs) for path, as a git merge leaves them."""
    name = git("rev-parse", "--show-prefix").stdout.strip() + path.as_posix()  # from the top
    mode = "100755" if os.access(path, os.X_OK) else "100644"
    entries = [f"0 {'0' * 40}\t{name}"]
    for stage, content in ((1, base), (2, ours), (3, theirs)):
        blob = (
            subprocess.run(
                ["git", "hash-object", "-w", "--stdin"],
                input=content,
                capture_output=True,
                check=True,
            )
            .stdout.decode()
            .strip()
        )
        entries.append(f"{mode} {blob} {stage}\t{name}")
    subprocess.run(
        ["git", "update-index", "--index-info"],
        input="\n".join(entries) + "\n",
        text=True,
        capture_output=True,
        check=True,
    )


def carry_over(rename: Rename, answers: dict[str, Any], previous: Path) -> None:
    """Move the team's work from rename.old to rename.new."""
    old, new = rename.old.format_map(answers), rename.new.format_map(answers)
    committed = committed_files(old)
    for name in committed:
        source, target = Path(name), Path(new + name[len(old) :])
        ours = committed_text(name)
        base_path = previous / name
        if not base_path.is_file():
            # Added by the team under a renamed folder: it moves with the folder, unless the
            # new release has a file of that name too.
            if target.exists():
                say(f"Left {name} where it is: the template now has its own {target}.")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(ours)
            say(f"Moved {name} to {target} ({old} became {new} in {rename.version}).")
        elif ours != base_path.read_bytes():
            if target.exists():
                merge_into(target, ours, base_path.read_bytes())
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(ours)
            say(f"Carried your changes to {name} over to {target} (renamed in {rename.version}).")
        source.unlink(missing_ok=True)
    # A file the team deleted before the rename stays deleted under its new name.
    if (previous / old).exists():
        rendered = [old] if (previous / old).is_file() else _files_under(previous, old)
        for name in sorted(set(rendered) - set(committed)):
            Path(new + name[len(old) :]).unlink(missing_ok=True)
    _remove_empty_folders(Path(old))


def _files_under(root: Path, folder: str) -> list[str]:
    return [
        path.relative_to(root).as_posix() for path in (root / folder).rglob("*") if path.is_file()
    ]


def _remove_empty_folders(folder: Path) -> None:
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*"), key=lambda path: len(path.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()


def files_with_conflicts() -> list[str]:
    """Changed or new files holding inline conflict markers, and rejected hunks (.rej)."""
    listed = git("ls-files", "-z", "--modified", "--others", "--exclude-standard").stdout
    found = []
    for name in set(filter(None, listed.split("\0"))):
        path = Path(name)
        if name.endswith(".rej"):
            found.append(name)
        elif path.is_file():
            lines = {line.rstrip() for line in path.read_bytes().splitlines()}
            if {CONFLICT_START.encode(), CONFLICT_END.encode()} & lines:
                found.append(name)
    return sorted(found)


def report_conflicts(conflicts: list[str], version: str) -> None:
    say(f"The update to {version} overlaps with your changes in {len(conflicts)} file(s):")
    for name in conflicts:
        say(f"  {name}")
    say(
        f"In each, keep what you want between '{CONFLICT_START}' (yours) and '{CONFLICT_END}' "
        "(the template's), delete the markers, then `git add` the file; for a .rej file, apply "
        "the rejected hunk by hand and delete it."
    )
    say("To undo the whole update instead: git reset --hard && git clean -fd")


def refused_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Why each answer in FIXED_ANSWERS that the update changed cannot change."""
    return [
        f"{name}: {before[name]!r} -> {after.get(name)!r}: "
        + reason.format(old=before[name], new=after.get(name))
        for name, reason in FIXED_ANSWERS.items()
        if name in before and after.get(name) != before[name]
    ]


def undo_update() -> None:
    """Put the project back as it was last committed (Copier updates only clean projects, so
    every change and new file is the update's)."""
    git("reset", "--quiet", "--hard", "HEAD")
    git("clean", "--quiet", "-d", "--force")


def main() -> int:
    before = answers_before_update()
    after: dict[str, Any] = yaml.safe_load(Path(ANSWERS_FILE).read_text())
    refused = refused_changes(before, after)
    if refused:
        undo_update()
        say("This update changes answers a generated project cannot change, so it was undone:")
        for reason in refused:
            say(f"  {reason}")
        say("Run `copier update` again without changing them (nothing was lost).")
        return 1
    old_version = Version(os.environ["VERSION_PEP440_FROM"])
    new_version = Version(os.environ["VERSION_PEP440_TO"])
    due = renames_between(old_version, new_version)
    if due:
        answers = answers_before_update()
        with tempfile.TemporaryDirectory() as scratch:
            previous = Path(scratch, "previous")
            render_previous_release(answers, previous)
            for rename in due:
                carry_over(rename, answers, previous)
    conflicts = files_with_conflicts()
    if conflicts:
        report_conflicts(conflicts, str(new_version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
