"""The machine and the tool versions a run measured, printed with its results."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

from .load import wrk_version


def _first_match(path: str, pattern: str) -> str | None:
    try:
        match = re.search(pattern, Path(path).read_text(), re.MULTILINE)
    except OSError:
        return None
    return match.group(1).strip() if match else None


def _tool_output(*command: str) -> str:
    if shutil.which(command[0]) is None:
        return ""
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    return (result.stdout or result.stderr).strip()


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else "not installed"


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def describe() -> dict[str, str]:
    memory_kib = _first_match("/proc/meminfo", r"^MemTotal:\s+(\d+) kB")
    hypervisor = re.search(r"^Hypervisor vendor:\s*(.+)$", _tool_output("lscpu"), re.MULTILINE)
    return {
        "CPU": _first_match("/proc/cpuinfo", r"^model name\s*:\s*(.+)$") or platform.processor(),
        "logical CPUs": str(os.cpu_count()),
        "memory": f"{int(memory_kib) / 1024 / 1024:.0f} GiB" if memory_kib else "unknown",
        "virtual machine": hypervisor.group(1).strip() if hypervisor else "none detected",
        "system": _first_match("/etc/os-release", r'^PRETTY_NAME="?([^"\n]+)"?')
        or platform.system(),
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "Copier": version("copier"),
        "uv": _first_line(_tool_output("uv", "--version")),
        "git": _first_line(_tool_output("git", "--version")),
        "wrk": wrk_version(),
    }
