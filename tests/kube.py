"""Read a generated project's Kubernetes manifests and run them with `podman kube play`.

`kubectl kustomize` puts the manifests together as a cluster would receive them. podman runs the
Deployments (one pod each) and, as a Pod, the migration Job's pod template (podman has no Jobs);
this module then does the kubelet's part: it runs every probe the manifests define against the
running containers. What a machine without a cluster needs, and nothing more, is changed for the
local run: host networking (so no port mappings, and one replica per Deployment), the image tag
the test built, settings for this run's own database and broker in the Secret, and the Secret
itself handed to podman as podman 4 reads one.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from .podman import podman_env

WORKLOADS = {"Deployment", "Job"}


def kubectl() -> str:
    found = shutil.which("kubectl")
    assert found, "kubectl (kustomize) is a Debian package: apt-get install kubernetes-client"
    return found


def kustomize(folder: Path) -> list[dict[str, Any]]:
    """The manifests `kubectl kustomize <folder>` puts together (offline)."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def manifest_files(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Each YAML file of the folder, as its documents."""
    return {
        path.name: [document for document in yaml.safe_load_all(path.read_text()) if document]
        for path in sorted(folder.glob("*.yaml"))
    }


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def the(manifests: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    """The one resource of `kind` (with the component label, when given)."""
    found = [
        manifest
        for manifest in manifests
        if manifest["kind"] == kind
        and (
            component is None
            or manifest["metadata"]["labels"].get("app.kubernetes.io/component") == component
        )
    ]
    assert len(found) == 1, (kind, component, [m["metadata"]["name"] for m in found])
    return found[0]


def kube_podman(
    *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    # A pod needs its own IPC namespace: kube play sets a shared-memory size, which the host's
    # IPC namespace refuses.
    result = subprocess.run(
        ["podman", *args],
        env=podman_env(ipcns="private"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


@dataclass
class Played:
    """A workload podman runs: the manifest as played and its one container's id."""

    manifest: dict[str, Any]
    container: str
    file: Path

    def logs(self) -> str:
        result = kube_podman("logs", self.container, check=False)
        return result.stdout + result.stderr

    def spec(self) -> dict[str, Any]:
        """The manifest's one container (a Deployment's, or the Pod's that runs a Job)."""
        spec = self.manifest["spec"]
        (container,) = (spec["template"]["spec"] if "template" in spec else spec)["containers"]
        return dict(container)

    def inspect(self, template: str) -> str:
        return kube_podman("inspect", "--format", template, self.container).stdout.strip()


def local_run(
    workload: dict[str, Any], image: str, port: int, port_variable: str
) -> dict[str, Any]:
    """The workload as this machine runs it: one replica, the test's image, host networking
    (container ports need no mapping: the probes use the port the server is told to bind)."""
    local = copy.deepcopy(workload)
    if local["kind"] == "Job":
        # podman runs Pods and Deployments: the Job's pod template, as the Job would start it.
        local = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": local["metadata"]["name"],
                **local["spec"]["template"]["metadata"],
            },
            "spec": local["spec"]["template"]["spec"],
        }
        spec = local["spec"]
    else:
        local["spec"]["replicas"] = 1
        spec = pod_spec(local)
    for container in spec["containers"]:
        container["image"] = image
        container.pop("ports", None)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if "httpGet" in container.get(probe, {}):
                container[probe]["httpGet"]["port"] = port
        container.setdefault("env", []).append({"name": port_variable, "value": str(port)})
    return local


@contextmanager
def played(
    manifests: list[dict[str, Any]],
    folder: Path,
    image: str,
    settings: Mapping[str, str],
    port: int,
    port_variable: str,
) -> Iterator[dict[str, Played]]:
    """Play the ConfigMap, the Secret (with `settings` filling in its values) and every workload,
    the migration first (to completion); yield the played workloads by component."""
    config = copy.deepcopy(the(manifests, "ConfigMap"))
    secret = the(manifests, "Secret")
    unknown = set(settings) - set(secret["stringData"]) - set(config["data"])
    assert not unknown, f"the test sets settings the manifests do not have: {unknown}"
    config["data"].update(
        {name: value for name, value in settings.items() if name in config["data"]}
    )
    values = {
        **secret["stringData"],
        **{name: value for name, value in settings.items() if name in secret["stringData"]},
    }
    secret_name = secret["metadata"]["name"]
    # podman 4 reads a kube Secret from its own store: a JSON map of base64 values.
    secret_file = folder / "secret.json"
    secret_file.write_text(
        json.dumps(
            {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}
        )
    )
    kube_podman("secret", "rm", secret_name, check=False)
    kube_podman("secret", "create", secret_name, str(secret_file))
    workloads = [m for m in manifests if m["kind"] in WORKLOADS]
    # The migration Job first, then the long-running ones.
    workloads.sort(key=lambda m: m["kind"] != "Job")
    started: dict[str, Played] = {}
    try:
        for workload in workloads:
            component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
            local = local_run(workload, image, port, port_variable)
            path = folder / f"{component}-{secrets.token_hex(3)}.yaml"
            path.write_text(yaml.safe_dump_all([config, local]))
            output = kube_podman("kube", "play", "--network", "host", str(path)).stdout
            container = output.split("Container:", 1)[1].split()[0]
            started[component] = Played(local, container, path)
            if workload["kind"] == "Job":
                wait_until_exited(started[component], timeout=300)
        yield started
    finally:
        for one in started.values():
            kube_podman("kube", "down", str(one.file), check=False)
        kube_podman("secret", "rm", secret_name, check=False)
        for volume in {
            volume["name"]
            for workload in workloads
            for volume in pod_spec(workload).get("volumes", [])
        }:
            kube_podman("volume", "rm", "--force", volume, check=False)


def wait_until_exited(played: Played, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while played.inspect("{{.State.Status}}") not in {"exited", "stopped"}:
        assert time.monotonic() < deadline, played.logs()
        time.sleep(1)
    assert played.inspect("{{.State.ExitCode}}") == "0", played.logs()


def probe_once(played: Played, probe: dict[str, Any]) -> bool:
    """One probe, as the kubelet runs it: an HTTP GET (any 2xx or 3xx passes) or a command in
    the container (exit 0 passes), within the probe's timeout."""
    timeout = probe.get("timeoutSeconds", 1)
    if "httpGet" in probe:
        get = probe["httpGet"]
        headers = {header["name"]: header["value"] for header in get.get("httpHeaders", [])}
        try:
            response = httpx.get(
                f"http://127.0.0.1:{get['port']}{get['path']}", headers=headers, timeout=timeout
            )
        except httpx.TransportError:
            return False
        return 200 <= response.status_code < 400
    command = probe["exec"]["command"]
    result = kube_podman("exec", played.container, *command, check=False, timeout=timeout + 30)
    return result.returncode == 0


def assert_probe_passes(played: Played, kind: str) -> None:
    """The probe passes within the time the kubelet gives it before acting: for a startup probe
    failureThreshold x periodSeconds; for the others, their initial delay and as many tries."""
    probe = played.spec()[kind]
    period = probe.get("periodSeconds", 10)
    allowed = probe.get("initialDelaySeconds", 0) + probe.get("failureThreshold", 3) * period
    # Tried more often than the kubelet would, never for longer.
    deadline = time.monotonic() + allowed
    while not probe_once(played, probe):
        assert time.monotonic() < deadline, (
            f"{kind} failed for {allowed} s:\n{played.logs()[-4000:]}"
        )
        time.sleep(min(period, 3))
