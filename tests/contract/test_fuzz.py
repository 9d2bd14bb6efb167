"""Schemathesis against each flavour's dev server: hundreds of generated requests per flavour,
no 5xx, and every response within the OpenAPI document the service publishes."""

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from ..conftest import FULL_VARIANTS, GeneratedProject, on_variants
from ..harness import is_server_command, make_superuser, serve

BIN = Path(sys.executable).parent

# Each flavour with and without auth, on PostgreSQL where the covering set has it: its strict
# types turn out-of-range values into errors SQLite lets through.


def fuzzed_variants() -> list[str]:
    chosen: dict[tuple[str, str], str] = {}
    for name, answers in FULL_VARIANTS.items():
        flavour = (answers["framework"], answers["auth"])
        kept = FULL_VARIANTS.get(chosen.get(flavour, ""), {})
        if kept.get("database") != "postgresql":
            chosen[flavour] = (
                name if answers["database"] == "postgresql" or not kept else chosen[flavour]
            )
    return list(chosen.values())


FUZZED = fuzzed_variants()
EXAMPLES_PER_OPERATION = 20
MINIMUM_CASES = 200


def token_headers(
    base_url: str,
    *,
    source_address: str | None = None,
    superuser_of: GeneratedProject | None = None,
) -> dict[str, str]:
    """A fresh user's bearer token (authenticated paths get fuzzed past the 401), registered and
    logged in from `source_address` (a loopback address) when one is given; a superuser made by
    the README's command in `superuser_of` when given (its routes get fuzzed past the 403)."""
    email, password = f"fuzz-{uuid.uuid4().hex[:12]}@example.com", "fuzzing passphrase"
    transport = httpx.HTTPTransport(local_address=source_address) if source_address else None
    with httpx.Client(base_url=base_url, transport=transport, timeout=30) as client:
        if superuser_of is not None:
            make_superuser(superuser_of.path, superuser_of.framework, email, password)
        else:
            registered = client.post(
                "/api/v1/auth/register", json={"email": email, "password": password}
            )
            assert registered.status_code == 201, registered.text
        token = client.post("/api/v1/auth/token", data={"username": email, "password": password})
        assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def header_arguments(headers: dict[str, str]) -> list[str]:
    """Headers as schemathesis's command-line arguments."""
    return [argument for item in headers.items() for argument in ("--header", ": ".join(item))]


def fuzz(
    generated: GeneratedProject,
    cwd: Path,
    path: str,
    *options: str,
    minimum_cases: int,
    env: dict[str, str] | None = None,
) -> str:
    """Schemathesis against the schema at `path` of the project's own dev server (its own
    process: the fuzzer's failed logins must not throttle the contract tests), as a fresh
    superuser where the project has users (it may change other accounts of this project's
    database: the tests after it make their own). Fails on a finding or on fewer cases than
    `minimum_cases`; returns the server's log."""
    command = next(command for command in generated.commands() if is_server_command(command))
    with serve(command, generated.path) as server:
        jwt = generated.auth == "jwt"
        headers = token_headers(server.base_url, superuser_of=generated) if jwt else {}
        result = subprocess.run(
            [
                BIN / "schemathesis",
                "run",
                f"{server.base_url}{path}",
                *options,
                # A fixed seed: CI fails on a finding, never on a lucky draw. Set
                # COPIER_BACKEND_FUZZ_SEED to explore other draws locally.
                "--seed",
                os.environ.get("COPIER_BACKEND_FUZZ_SEED", "1"),
                "--generation-database",
                "none",
                # Generous limits: a slow answer on a busy CI machine is not a finding.
                "--request-timeout",
                "60",
                "--no-color",
                *header_arguments(headers),
            ],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        output = result.stdout + result.stderr
        findings = output[output.find("= FAILURES =") :] if "= FAILURES =" in output else output
        log = server.log()
        errors = "\n".join(line for line in log.splitlines() if "Error" in line)
        assert result.returncode == 0, f"{findings[:12000]}\n--- server errors ---\n{errors[:4000]}"
    cases = re.search(r"(\d+) generated", output)
    assert cases, output[-2000:]
    assert int(cases.group(1)) >= minimum_cases, output[-2000:]
    return log


@on_variants(FUZZED)
def test_schemathesis_finds_no_server_error_and_no_undocumented_response(
    generated: GeneratedProject, tmp_path: Path
) -> None:
    fuzz(
        generated,
        tmp_path,
        "/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--max-response-time",
        "60",
        minimum_cases=MINIMUM_CASES,
    )
