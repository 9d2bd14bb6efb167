"""The Kubernetes option: manifests that pass the Kubernetes schemas in strict mode and agree with
the service they deploy (ports, probes, user, settings, commands, shutdown times).

The manifests run for real in tests/test_docker_ci.py: the FastAPI image test plays them with
podman (tests/kube.py), the migration Job's pod included, and runs every probe.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .harness import documented_command, render
from .kube import kustomize, manifest_files, pod_spec, the

# The Kubernetes version the manifests are checked against: the newest whose schemas
# kubernetes-validate ships.
KUBERNETES_VERSION = "1.37.0"
FRAMEWORKS = ["fastapi", "flask", "django"]

# Every combination the questionnaire accepts with Kubernetes, of the answers the manifests depend
# on: framework, database (SQLite is refused), auth, Celery and its broker, the shared Redis (and
# with it GraphQL). The others (CI, Python version, licence, agent files) change no manifest.
MATRIX = [
    {
        "framework": framework,
        "database": database,
        "auth": auth,
        "redis": redis,
        # GraphQL adds one ConfigMap key: it rides along with the shared Redis.
        "graphql": redis,
        "deploy": "kubernetes",
        **({"celery": True, "broker": broker} if broker else {}),
    }
    for framework, database, auth, broker, redis in itertools.product(
        FRAMEWORKS,
        ["postgresql", "mysql"],
        ["jwt", "none"],
        [None, "redis", "rabbitmq"],
        [True, False],
    )
]


def matrix_id(answers: dict[str, Any]) -> str:
    celery = f"-celery-{answers['broker']}" if answers.get("celery") else ""
    redis = "-redis" if answers.get("redis") else ""
    return f"{answers['framework']}-{answers['database']}-{answers['auth']}{celery}{redis}"


@pytest.fixture(scope="module", params=MATRIX, ids=matrix_id)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    answers = request.param
    # Only the files the checks read: the rest of a render costs time and is checked elsewhere.
    only = ("k8s", "k8s/*", "Dockerfile", "compose.yaml", ".env.example", "README.md")
    project = tmp_path_factory.mktemp("kubernetes") / "my-service"
    return answers, render(project, answers, only=(*only, "gunicorn.conf.py"))


def all_manifests(project: Path) -> list[dict[str, Any]]:
    return [
        document
        for name, documents in manifest_files(project / "k8s").items()
        if name != "kustomization.yaml"
        for document in documents
    ]


def workloads(project: Path) -> list[dict[str, Any]]:
    return [m for m in all_manifests(project) if m["kind"] in {"Deployment", "Job"}]


def test_every_manifest_passes_the_kubernetes_schemas_in_strict_mode(rendered) -> None:
    _, project = rendered
    files = manifest_files(project / "k8s")
    kustomization = files.pop("kustomization.yaml")[0]
    # kustomize applies exactly the files in the folder.
    assert sorted(kustomization["resources"]) == sorted(files)
    for documents in files.values():
        for document in documents:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    # And what kustomize makes of them: the image set, nothing dropped.
    built = kustomize(project / "k8s")
    assert len(built) == sum(len(documents) for documents in files.values())
    for document in built:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        for container in (
            pod_spec(document)["containers"]
            if document["kind"]
            in {
                "Deployment",
                "Job",
            }
            else []
        ):
            image = kustomization["images"][0]
            assert container["image"] == f"{image['newName']}:{image['newTag']}"


def test_strict_validation_refuses_a_misspelt_field(rendered) -> None:
    """The check above can fail: a field the schema does not have is refused."""
    _, project = rendered
    deployment = the(workloads(project), "Deployment", "web")
    pod_spec(deployment)["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/", "port": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def dockerfile(project: Path) -> str:
    return (project / "Dockerfile").read_text()


def test_the_pods_run_as_the_image_user_read_only_with_limits(rendered) -> None:
    _, project = rendered
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile(project), re.MULTILINE)
    assert user
    for workload in workloads(project):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == int(user.group(1))
        assert spec["securityContext"]["runAsGroup"] == int(user.group(2))
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
            # Every volume a container writes to is one the pod defines.
            volumes = {volume["name"] for volume in spec.get("volumes", [])}
            assert {mount["name"] for mount in container.get("volumeMounts", [])} <= volumes
            assert {"configMapRef", "secretRef"} == {
                key for source in container["envFrom"] for key in source
            }


def test_the_web_probes_port_and_shutdown_match_the_service(rendered) -> None:
    answers, project = rendered
    manifests = all_manifests(project)
    web = the(manifests, "Deployment", "web")
    (container,) = pod_spec(web)["containers"]
    expose = re.search(r"^EXPOSE (\d+)$", dockerfile(project), re.MULTILINE)
    assert expose
    assert container["ports"] == [{"name": "http", "containerPort": int(expose.group(1))}]
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe")}
    probes["readinessProbe"] = container["readinessProbe"]["httpGet"]
    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startupProbe": "/health/live",
        "livenessProbe": "/health/live",
        "readinessProbe": "/health/ready",
    }
    # The health paths are the ones the image's own HEALTHCHECK and the contract use.
    assert "/health/live" in dockerfile(project)
    config = the(manifests, "ConfigMap")["data"]
    for probe in probes.values():
        assert probe["port"] == "http"
        if answers["framework"] == "django":
            # Django answers only the hosts ALLOWED_HOSTS lists, and the kubelet would send the
            # pod's address.
            (host,) = probe["httpHeaders"]
            assert host["name"] == "Host"
            assert host["value"] in config["ALLOWED_HOSTS"].split(",")
        else:
            assert "httpHeaders" not in probe
    # The pod is given longer to stop than the server takes to finish its requests after the
    # pause before SIGTERM.
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    if answers["framework"] == "fastapi":
        server = int(config["UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN"])
    else:
        found = re.search(
            r"^graceful_timeout = (\d+)$", (project / "gunicorn.conf.py").read_text(), re.MULTILINE
        )
        assert found
        server = int(found.group(1))
    assert pod_spec(web)["terminationGracePeriodSeconds"] > server + pause
    # Service, Ingress, autoscaler and disruption budget point at the web pods.
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert web["spec"]["selector"]["matchLabels"] == labels
    service = the(manifests, "Service")
    assert service["spec"]["selector"] == labels
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    backend = the(manifests, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"] == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    autoscaler = the(manifests, "HorizontalPodAutoscaler")
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == web["metadata"]["name"]
    assert autoscaler["spec"]["minReplicas"] >= 2
    assert web["spec"]["replicas"] >= 2
    budget = the(manifests, "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"] == labels
    assert budget["spec"]["minAvailable"] < min(
        web["spec"]["replicas"], autoscaler["spec"]["minReplicas"]
    )


def env_example_names(project: Path) -> set[str]:
    return set(
        re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", (project / ".env.example").read_text(), re.MULTILINE)
    )


# Read by the servers themselves, not by the service's settings.
SERVER_VARIABLES = {"WEB_CONCURRENCY", "UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN"}


def test_every_setting_is_one_the_service_reads_and_secrets_stay_secret(rendered) -> None:
    answers, project = rendered
    manifests = all_manifests(project)
    config = the(manifests, "ConfigMap")["data"]
    secret = the(manifests, "Secret")["stringData"]
    known = env_example_names(project) | SERVER_VARIABLES
    assert set(config) | set(secret) <= known, (set(config) | set(secret)) - known
    assert not set(config) & set(secret)
    # No value is filled in: the Secret is a form.
    assert set(secret.values()) == {""}
    required = {"DATABASE_URL"}
    required |= {"SECRET_KEY"} if answers["auth"] == "jwt" else set()
    required |= {"REDIS_URL"} if answers.get("redis") else set()
    required |= {"CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"} if answers.get("celery") else set()
    assert required <= set(secret)
    # Credentials never in the ConfigMap.
    assert not {name for name in config if re.search(r"URL$|KEY|TOKEN|PASSWORD|DSN", name)} - {
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    }


def test_the_commands_are_the_documented_ones(rendered) -> None:
    """The Job runs README's migration command, the worker and beat README's Celery commands,
    each without `uv run` (as compose.yaml does)."""
    answers, project = rendered
    readme = (project / "README.md").read_text()
    compose = yaml.safe_load((project / "compose.yaml").read_text())["services"]

    def documented(purpose: str) -> list[str]:
        """README's command for `purpose` (its comment), as the image runs it."""
        return documented_command(readme, purpose).removeprefix("uv run ").split()

    manifests = workloads(project)
    job = the(manifests, "Job", "migrate")
    (migrate,) = pod_spec(job)["containers"]
    migration = documented("create or upgrade the database schema")
    assert migrate["command"] == migration == compose["migrate"]["command"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    components = {m["metadata"]["labels"]["app.kubernetes.io/component"] for m in manifests}
    if not answers.get("celery"):
        assert components == {"web", "migrate"}
        return
    assert components == {"web", "migrate", "worker", "beat"}
    (worker,) = pod_spec(the(manifests, "Deployment", "worker"))["containers"]
    assert worker["command"] == [
        *documented("Celery worker"),
        "--concurrency",
        "2",
    ]
    assert worker["command"][:-2] == compose["worker"]["command"]
    beat_deployment = the(manifests, "Deployment", "beat")
    (beat,) = pod_spec(beat_deployment)["containers"]
    assert beat["command"] == compose["beat"]["command"]
    beat_documented = documented("Celery beat")
    assert beat["command"][: len(beat_documented)] == beat_documented
    # Beat: exactly one, the old one stopped before the new one starts.
    assert beat_deployment["spec"]["replicas"] == 1
    assert beat_deployment["spec"]["strategy"] == {"type": "Recreate"}
    # A stopped worker has longer than a task may run to finish it.
    limit = re.search(
        r"^CELERY_TASK_TIME_LIMIT_SECONDS=(\d+)$",
        (project / ".env.example").read_text(),
        re.MULTILINE,
    )
    assert limit
    assert pod_spec(the(manifests, "Deployment", "worker"))["terminationGracePeriodSeconds"] > int(
        limit.group(1)
    )
    # The liveness checks are compose's health checks.
    ping = worker["livenessProbe"]["exec"]["command"]
    assert ping[:2] == ["sh", "-c"]
    assert compose["worker"]["healthcheck"]["test"] == ["CMD-SHELL", ping[2].replace("$", "$$")]
    assert compose["beat"]["healthcheck"]["test"] == [
        "CMD",
        *beat["livenessProbe"]["exec"]["command"],
    ]


@pytest.mark.parametrize(
    "answers",
    [
        {"database": "postgresql"},
        {"database": "sqlite", "deploy": "none"},
        # Asked only with Docker: an answer given without it renders nothing.
        {"database": "postgresql", "docker": False, "deploy": "kubernetes"},
    ],
    ids=["kubernetes-off", "sqlite", "no-docker"],
)
def test_no_manifests_unless_chosen(tmp_path: Path, answers: dict[str, Any]) -> None:
    project = render(tmp_path / "my-service", answers)
    assert not (project / "k8s").exists()
    assert "kubectl" not in (project / "README.md").read_text()
