"""Celery in the generated projects: the documented worker and beat commands, run as written
against the project's real broker, do the work the README promises."""

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from .conftest import (
    GeneratedProject,
    Live,
    has_users,
    on_broker_server,
    on_variants,
    one_each,
)
from .harness import (
    BROKER_SERVER_VARIABLES,
    ExportedSpan,
    MetricSamples,
    OtlpCollector,
    background,
    delete_broker_queue,
    documented_command,
    free_port,
    is_server_command,
    local_setting,
    metric_samples,
    otlp_collector,
    serve,
)
from .smtp import smtp_server

# Beat and the worker on each framework and each broker (a few variants hold them all), the
# welcome email through a real worker on each framework, and a worker killed mid-task on each
# broker server.
EACH_BROKER_VARIANTS = one_each("framework", "broker", where=lambda answers: answers["celery"])
WELCOME_EMAIL_VARIANTS = one_each(
    "framework", where=lambda answers: answers["celery"] and has_users(answers)
)
BROKER_SERVER_VARIANTS = one_each(
    "broker", where=lambda answers: on_broker_server(answers) and has_users(answers)
)

on_each_variant = on_variants(EACH_BROKER_VARIANTS)
with_welcome_email = on_variants(WELCOME_EMAIL_VARIANTS)
on_broker_servers = on_variants(BROKER_SERVER_VARIANTS)

# What the worker logs once it consumes from the broker.
WORKER_READY = " ready."


@pytest.fixture
def own_queue(generated: GeneratedProject) -> Iterator[dict[str, str]]:
    """The environment that gives the test a queue of its own, deleted after: tasks other tests
    left in the project's queue (the fuzzer registers hundreds of users) reach no worker here."""
    queue = f"cb-celery-{uuid.uuid4().hex[:10]}"
    yield {"CELERY_TASK_DEFAULT_QUEUE": queue}
    if generated.answers.get("broker") in BROKER_SERVER_VARIABLES:
        broker_url = local_setting(generated.path, "CELERY_BROKER_URL")
        delete_broker_queue(
            generated.path, {"CELERY_BROKER_URL": broker_url, "CELERY_TASK_DEFAULT_QUEUE": queue}
        )


@pytest.fixture
def live(generated: GeneratedProject, own_queue: dict[str, str]) -> Iterator[Live]:
    """A dev server of the test's own (the session's is left to the HTTP contract tests)."""
    servers = [command for command in generated.commands() if is_server_command(command)]
    with serve(servers[0], generated.path, env=own_queue) as server:
        yield Live(generated, server)


def worker_command(project: GeneratedProject) -> str:
    return documented_command((project.path / "README.md").read_text(), "Celery worker")


def beat_command(project: GeneratedProject) -> str:
    return documented_command((project.path / "README.md").read_text(), "Celery beat")


METRICS_TOKEN = "a-metrics-token-for-the-worker"


def scrape_worker(port: int) -> MetricSamples:
    """The samples a worker serves on its metrics port; a scrape without the token is refused."""
    url = f"http://127.0.0.1:{port}/metrics"
    assert httpx.get(url, timeout=10).status_code == 401
    response = httpx.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return metric_samples(response.text)


def registered(spans: list[ExportedSpan]) -> list[ExportedSpan]:
    """The server spans of registrations."""
    return [
        span
        for span in spans
        if span.kind == OtlpCollector.SERVER
        and str(span.attributes.get("http.route")).endswith("auth/register")
    ]


def run(spans: list[ExportedSpan]) -> list[ExportedSpan]:
    """The spans of tasks run by a worker."""
    return [span for span in spans if span.kind == OtlpCollector.CONSUMER]


def register(live: Live, headers: dict[str, str] | None = None) -> str:
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    response = httpx.post(
        f"{live.url}/api/v1/auth/register",
        json={"email": email, "password": "correct horse battery"},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return email


@with_welcome_email
def test_the_worker_sends_the_welcome_email_of_a_user_registered_over_http(
    generated: GeneratedProject, own_queue: dict[str, str]
) -> None:
    """The task carries the request's id and continues its trace: with
    OTEL_EXPORTER_OTLP_ENDPOINT set, the dev server and the worker export to one collector, and
    the task's span is in the trace of the request that queued it. With METRICS_TOKEN set, the
    worker's main process serves on WORKER_METRICS_PORT the count and duration of the task, which
    ran in one of its pool's child processes."""
    server_command = next(command for command in generated.commands() if is_server_command(command))
    metrics_port = free_port()
    with otlp_collector() as collector:
        env = own_queue | {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "METRICS_TOKEN": METRICS_TOKEN,
            "WORKER_METRICS_PORT": str(metrics_port),
        }
        with (
            serve(server_command, generated.path, env=env) as server,
            background(worker_command(generated), generated.path, env=env) as worker,
        ):
            worker.wait_for(WORKER_READY)
            request_id = f"signup-{uuid.uuid4().hex[:8]}"
            email = register(Live(generated, server), headers={"X-Request-ID": request_id})
            # The console backend logs each email with its recipient; the task's log lines
            # carry the id of the request that queued it.
            sent = worker.wait_for(email)
            lines = [line for line in worker.log().splitlines() if email in line]
            logged = [line for line in lines if "email.sent" in line]
            assert logged, worker.log()[-4000:]
            assert all(request_id in line for line in logged), logged
            worker.wait_for("succeeded in", after=sent, timeout=30)
            assert "Traceback" not in worker.log(), worker.log()[-6000:]
            # Each process exports in batches, every few seconds.
            spans = collector.wait_for(lambda spans: registered(spans) and len(run(spans)) >= 2)
            scraped = scrape_worker(metrics_port)
    welcome_email = (
        f"{generated.answers.get('project_slug', 'my_service')}.users.tasks.send_welcome_email"
    )
    succeeded = (("state", "SUCCESS"), ("task", welcome_email))
    assert scraped.get(("celery_tasks_total", succeeded)) == 1, scraped
    duration = ("celery_task_duration_seconds_count", (("task", welcome_email),))
    assert scraped.get(duration) == 1, scraped
    (request,) = registered(spans)
    # The registration queued two tasks, the welcome email and the verification link: both in
    # the request's trace.
    tasks = run(spans)
    assert sorted(task.name.rsplit(".", 1)[1] for task in tasks) == [
        "send_verification_email",
        "send_welcome_email",
    ], tasks
    assert {task.trace_id for task in tasks} == {request.trace_id}, spans
    # The task's log lines name that trace too.
    assert all(request.trace_id in line for line in logged), logged


@with_welcome_email
def test_a_task_past_its_time_limit_is_stopped_and_the_worker_goes_on(
    live: Live, own_queue: dict[str, str]
) -> None:
    """A welcome email stuck on a mail server that accepts and never answers is asked to stop at
    90 % of CELERY_TASK_TIME_LIMIT_SECONDS, long before SMTP's own 10-second timeout, and the
    same worker sends the next email. The limit leaves half a second between the soft and the
    hard limit: the worker's timers fire late on a loaded machine, and past the hard limit the
    soft one is never logged."""
    limit = 5
    with smtp_server() as (port, mailbox):
        env = {
            **own_queue,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "SMTP_STARTTLS": "false",
            "CELERY_TASK_TIME_LIMIT_SECONDS": str(limit),
        }
        mailbox.hold_next = True
        with background(worker_command(live.project), live.project.path, env=env) as worker:
            worker.wait_for(WORKER_READY)
            register(live)
            assert mailbox.held.wait(60), f"the worker never connected:\n{worker.log()[-6000:]}"
            worker.wait_for("Soft time limit", timeout=limit + 3)
            # Past the hard limit as well (its timer fires late on a loaded machine) and, if it
            # struck, the killed process gone: a task handed to a process in the instant it is
            # killed is sent again only by housekeeping, which this test is not about.
            time.sleep(2)
            if "Hard time limit" in worker.log():
                worker.wait_for("exited with 'signal", timeout=10)
            email = register(live)
            deadline = time.monotonic() + 30
            while email not in mailbox.recipients():
                assert time.monotonic() < deadline, f"not sent:\n{worker.log()[-6000:]}"
                assert worker.process.poll() is None, worker.log()[-6000:]
                time.sleep(0.3)


@on_each_variant
def test_beat_sends_the_housekeeping_task_and_the_worker_runs_it(
    generated: GeneratedProject, own_queue: dict[str, str]
) -> None:
    often = {"HOUSEKEEPING_INTERVAL_SECONDS": "1", **own_queue}
    # With users, housekeeping queues lost welcome emails again; without, it refreshes the items
    # table's statistics.
    done = (
        "housekeeping.welcome_emails_requeued"
        if generated.auth == "jwt"
        else "housekeeping.item_statistics_refreshed"
    )
    with (
        background(worker_command(generated), generated.path, env=often) as worker,
        background(beat_command(generated), generated.path, env=often) as beat,
    ):
        beat.wait_for("Sending due task housekeeping")
        worker.wait_for(done)
        assert "Traceback" not in worker.log() + beat.log(), worker.log() + beat.log()


@on_broker_servers
def test_a_task_whose_worker_is_killed_mid_task_completes_after_a_restart(
    live: Live, own_queue: dict[str, str]
) -> None:
    """acks_late: the broker keeps the task until it finished, so killing the worker while it
    sends the email loses nothing; the restarted worker sends it, once."""
    project = live.project
    with smtp_server() as (port, mailbox):
        env = {
            **own_queue,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "SMTP_STARTTLS": "false",
            # Redis redelivers an unacknowledged task after this (RabbitMQ when the connection
            # of the dead worker closes), which must be above the task time limit.
            "CELERY_VISIBILITY_TIMEOUT_SECONDS": "3",
            "CELERY_TASK_TIME_LIMIT_SECONDS": "2",
        }
        # The welcome email is held mid-send (the registration's verification email, a task of
        # its own and not acked late, goes through).
        mailbox.hold_subject = "Welcome"
        with background(worker_command(project), project.path, env=env) as first:
            first.wait_for(WORKER_READY)
            email = register(live)
            assert mailbox.held.wait(60), f"the worker never connected:\n{first.log()[-6000:]}"
            first.kill()  # SIGKILL, mid-task
        assert mailbox.recipients("Welcome") == []
        with background(worker_command(project), project.path, env=env) as second:
            deadline = time.monotonic() + 90
            while email not in mailbox.recipients("Welcome"):
                assert time.monotonic() < deadline, f"not redelivered:\n{second.log()[-6000:]}"
                assert second.process.poll() is None, second.log()[-6000:]
                time.sleep(0.5)
            second.wait_for("succeeded in", timeout=30)
        assert mailbox.recipients("Welcome") == [email]
