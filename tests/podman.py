"""Build and run container images offline: podman with its own configuration and storage, a
Debian base image made by debootstrap, and uv copied from this machine, all cached between runs.

Nothing here touches the machine's own podman configuration: CONTAINERS_CONF and
CONTAINERS_STORAGE_CONF point at files under the cache directory, with vfs storage, the runc
runtime and cgroupfs, which work without a container engine, registry or systemd.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "copier-backend"
PODMAN_HOME = CACHE / "podman"

# The base image stands in for `python:<version>-slim`: Debian bookworm, whose python3 is 3.11.
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("COPIER_BACKEND_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = ("python3", "ca-certificates")
# Debian packages the image test needs on the machine (installed by .ci/run when missing).
REQUIRED_TOOLS = ("podman", "buildah", "runc", "debootstrap")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@contextmanager
def cache_lock(name: str) -> Iterator[None]:
    """Hold an exclusive lock named `name` in the cache directory: the test workers install
    shared tools there, one at a time."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def containers_conf(ipcns: str = "host") -> str:
    """Host namespaces (but the IPC one, when `ipcns` says), runc and cgroupfs; limits no higher
    than this process's own (podman may not raise them, and its defaults can be above what a
    sandboxed machine allows)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    # podman lowers its own process limit to 32768 before starting the build container.
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
    limits = f'"nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"'
    return (
        "[containers]\n"
        'netns = "host"\n'
        'cgroupns = "host"\n'
        f'ipcns = "{ipcns}"\n'
        'utsns = "host"\n'
        f"default_ulimits = [{limits}]\n"
        "\n[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
    )


def missing_tools() -> list[str]:
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]


def podman_env(ipcns: str = "host") -> dict[str, str]:
    """The environment for podman: configuration and storage under the cache directory (one
    configuration file for each IPC namespace setting)."""
    conf = PODMAN_HOME / ("containers.conf" if ipcns == "host" else f"containers-ipc-{ipcns}.conf")
    storage = PODMAN_HOME / "storage.conf"
    PODMAN_HOME.mkdir(parents=True, exist_ok=True)
    if not conf.exists() or conf.read_text() != containers_conf(ipcns):
        conf.write_text(containers_conf(ipcns))
    storage_text = (
        "[storage]\n"
        'driver = "vfs"\n'
        f'graphroot = "{PODMAN_HOME / "storage"}"\n'
        f'runroot = "{PODMAN_HOME / "run"}"\n'
    )
    if not storage.exists() or storage.read_text() != storage_text:
        storage.write_text(storage_text)
    env = dict(os.environ)
    env.update(
        CONTAINERS_CONF=str(conf),
        CONTAINERS_STORAGE_CONF=str(storage),
        BUILDAH_ISOLATION="chroot",
    )
    return env


def podman(
    *args: str, timeout: float = 900, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} exited {result.returncode}\n--- stdout\n"
            f"{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def _key(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def debian_base_image() -> str:
    """A local image of Debian with python3, made by debootstrap once per set of inputs."""
    trusted = HOST_CA_BUNDLE.read_text() if HOST_CA_BUNDLE.exists() else ""
    key = _key(DEBIAN_SUITE, DEBIAN_MIRROR, *BASE_PACKAGES, trusted)
    name = f"localhost/copier-backend-base:{key}"
    if image_exists(name):
        return name
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="debootstrap-") as work:
        root = Path(work) / "root"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                DEBIAN_SUITE,
                str(root),
                DEBIAN_MIRROR,
            ],
            capture_output=True,
            text=True,
            timeout=1200,
            check=True,
        )
        if trusted:
            # Trust what this machine trusts (a proxy's certificate authority, say), so the
            # image build can reach PyPI wherever the tests can.
            (root / "etc" / "ssl" / "certs" / "ca-certificates.crt").write_text(trusted)
        shutil.rmtree(root / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        shutil.rmtree(root / "var" / "lib" / "apt" / "lists", ignore_errors=True)
        archive = Path(work) / "root.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(root), "-cf", str(archive), "."], check=True
        )
        podman(
            "import",
            "--change",
            'CMD ["/bin/bash"]',
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            str(archive),
            name,
        )
    return name


def uv_image() -> str:
    """An image holding /uv and /uvx at its root, like the official uv image, made from the uv
    that runs these tests."""
    uv = shutil.which("uv") or os.environ.get("UV")
    assert uv, "uv is required"
    uvx = Path(uv).with_name("uvx")
    version = subprocess.run(
        [uv, "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    name = f"localhost/copier-backend-uv:{version}"
    if image_exists(name):
        return name
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="uv-image-") as work:
        context = Path(work)
        shutil.copy2(uv, context / "uv")
        shutil.copy2(uvx, context / "uvx")
        (context / "Containerfile").write_text("FROM scratch\nCOPY uv uvx /\n")
        podman("build", "--isolation", "chroot", "--pull=never", "--tag", name, str(context))
    return name
