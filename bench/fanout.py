"""Fan-out of real-time events: many WebSocket subscribers over two production processes.

A FastAPI project with real-time events (auth=none, so every subscriber hears every item;
PostgreSQL) runs as two production server processes (the Dockerfile's command, one process
each) sharing a new database, once with Redis pub/sub carrying the events between them and once
with PostgreSQL's LISTEN/NOTIFY. Half the subscribers connect to each process; a writer creates
items on the first at a steady rate. Each event carries the time the server published it, once
its transaction had committed (`at`); the subscriber notes when it arrived. The table gives the
events delivered per second over the run and the time from commit to delivery: half the
subscribers hear of each write from the other process.

The subscribers are one asyncio process of the benchmark's own on the same machine, which parses
every event: on a small machine it competes with the servers, the database and Redis for the
cores, and its own work is part of the delay measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

from .common import scratch_database
from .load import prepare_project, production_processes

POSTGRESQL_VARIABLE = "COPIER_BACKEND_POSTGRESQL_URL"
POSTGRESQL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_VARIABLE = "COPIER_BACKEND_REDIS_URL"
REDIS_DEFAULT = "redis://127.0.0.1:6379"
FAN_OUTS = {"Redis pub/sub": True, "PostgreSQL LISTEN/NOTIFY": False}
# Subscribers opening their sockets at once.
CONNECTING_AT_ONCE = 50


@dataclass(frozen=True)
class FanoutSettings:
    subscribers: int = 1000
    writes_per_second: float = 10
    duration: float = 10
    # How long after the last write events may still arrive.
    drain: float = 10


@dataclass(frozen=True)
class FanoutResult:
    fan_out: str
    subscribers: int
    writes: int
    delivered: int
    seconds: float
    latencies_ms: list[float]

    @property
    def expected(self) -> int:
        return self.writes * self.subscribers

    @property
    def per_second(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _subscribe(url: str) -> ClientConnection:
    socket = await connect(url.replace("http://", "ws://") + "/api/v1/ws", max_queue=None)
    ready = json.loads(await socket.recv())
    assert ready == {"type": "ready"}, ready
    return socket


async def _listen(socket: ClientConnection, latencies: list[float], counts: list[int]) -> None:
    async for message in socket:
        arrived = time.time()
        event = json.loads(message)
        if event["type"].startswith("item."):
            sent = datetime.fromisoformat(event["at"].replace("Z", "+00:00")).timestamp()
            latencies.append((arrived - sent) * 1000)
            counts[0] += 1


async def _run(urls: list[str], settings: FanoutSettings) -> tuple[int, int, float, list[float]]:
    limit = asyncio.Semaphore(CONNECTING_AT_ONCE)

    async def one(index: int) -> ClientConnection:
        async with limit:
            return await _subscribe(urls[index % len(urls)])

    sockets = await asyncio.gather(*(one(index) for index in range(settings.subscribers)))
    latencies: list[float] = []
    counts = [0]
    listeners = [asyncio.create_task(_listen(socket, latencies, counts)) for socket in sockets]
    writes = 0
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=urls[0], timeout=30) as client:
        interval = 1 / settings.writes_per_second
        while time.monotonic() - started < settings.duration:
            response = await client.post("/api/v1/items", json={"name": f"item {writes}"})
            response.raise_for_status()
            writes += 1
            next_write = started + writes * interval
            await asyncio.sleep(max(0.0, next_write - time.monotonic()))
    expected = writes * settings.subscribers
    deadline = time.monotonic() + settings.drain
    while counts[0] < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    seconds = time.monotonic() - started
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
    return writes, counts[0], seconds, latencies


def measure(
    scratch: Path, settings: FanoutSettings, progress: Callable[[str], None]
) -> list[FanoutResult]:
    postgresql = os.environ.get(POSTGRESQL_VARIABLE, POSTGRESQL_DEFAULT)
    redis = os.environ.get(REDIS_VARIABLE, REDIS_DEFAULT).rstrip("/")
    results = []
    for fan_out, with_redis in FAN_OUTS.items():
        progress(f"fan-out through {fan_out}: {settings.subscribers} subscribers")
        with scratch_database(postgresql) as database_url:
            answers = {
                "framework": "fastapi",
                "auth": "none",
                "database": "postgresql",
                "redis": with_redis,
                "realtime": True,
            }
            name = "redis" if with_redis else "postgresql"
            project = prepare_project(scratch / name, answers, database_url=database_url)
            # A Redis database of the run's own, under a prefix of its own.
            redis_url = f"{redis}/{secrets.randbelow(15) + 1}" if with_redis else None
            # No heartbeat and no cap within the run; the subscribers read as fast as they can.
            limits = {
                "REALTIME_MAX_CONNECTIONS": "100000",
                "REALTIME_HEARTBEAT_SECONDS": "600",
                "REALTIME_QUEUE_SIZE": "10000",
                "LOG_LEVEL": "WARNING",
                **({"REDIS_URL": redis_url} if redis_url else {}),
            }
            with production_processes(project, 2, **limits) as servers:
                urls = [server.base_url for server in servers]
                writes, delivered, seconds, latencies = asyncio.run(_run(urls, settings))
        results.append(
            FanoutResult(fan_out, settings.subscribers, writes, delivered, seconds, latencies)
        )
    return results


def section(results: list[FanoutResult], settings: FanoutSettings) -> list[str]:
    lines = [
        "### Fan-out of real-time events",
        "",
        f"{settings.subscribers} WebSocket subscribers, half on each of two production processes "
        "of a FastAPI project (auth none: each hears every item; PostgreSQL, one Uvicorn process "
        f"each), a writer creating {settings.writes_per_second:g} items a second on the first "
        f"for {settings.duration:g} s. *Commit to delivery*: from the time in the event (set "
        "after the commit) to its arrival in the subscribers' process, on the same machine. "
        "The subscribers are one Python process of the benchmark's, sharing the machine's cores "
        "with the servers, the database and Redis.",
        "",
        "| fan-out | subscribers | writes | events delivered | of expected | events/s "
        "| p50 commit to delivery | p99 | max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        share = result.delivered / result.expected if result.expected else 0
        lines.append(
            f"| {result.fan_out} | {result.subscribers:,} | {result.writes:,} "
            f"| {result.delivered:,} | {share:.1%} | {result.per_second:,.0f} "
            f"| {result.percentile(0.5):,.0f} ms | {result.percentile(0.99):,.0f} ms "
            f"| {max(result.latencies_ms, default=float('nan')):,.0f} ms |"
        )
    return [*lines, ""]
