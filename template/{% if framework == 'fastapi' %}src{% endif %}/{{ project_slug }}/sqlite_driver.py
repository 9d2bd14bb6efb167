"""SQLite through aiosqlite, with one trip to the connection's thread per statement, not four.

aiosqlite runs each connection in a thread of its own, and every call is a trip from the event
loop to that thread and back: a queue, a wake-up of the thread, a wake-up of the loop. For each
statement SQLAlchemy made four (the cursor, the statement, its rows, closing the cursor), and one
more to roll back each connection going back to the pool. Here the loop makes the cursor object
itself (SQLAlchemy opens SQLite connections with `check_same_thread=False`), the statement's first
rows come back with the statement, a cursor whose rows were all read has nothing to close on the
thread (SQLite resets a statement when its last row is read), and a commit or rollback with no
transaction open does nothing, as sqlite3's own does, without the trip. Past the first
`PREFETCH_ROWS` rows, the rest are fetched as aiosqlite does, so a large result, or a stream, is
not held in memory more than before. docs/benchmarks.md in the template says what it saves.
"""

import sqlite3
from collections import deque
from collections.abc import Iterable
from typing import Any

import aiosqlite
from aiosqlite.context import contextmanager

PREFETCH_ROWS = 1000


class Cursor(aiosqlite.Cursor):
    def __init__(self, connection: aiosqlite.Connection, cursor: sqlite3.Cursor) -> None:
        super().__init__(connection, cursor)
        self._rows: deque[Any] = deque()
        self._read_all = True

    def _execute_and_fetch(self, sql: str, parameters: Any) -> list[Any]:
        """On the connection's thread: the statement and up to PREFETCH_ROWS of its rows."""
        self._cursor.execute(sql, parameters)
        if self._cursor.description is None:
            return []
        return self._cursor.fetchmany(PREFETCH_ROWS)

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> "Cursor":
        rows: list[Any] = await self._execute(  # type: ignore[no-untyped-call]
            self._execute_and_fetch, sql, [] if parameters is None else parameters
        )
        self._rows = deque(rows)
        self._read_all = len(rows) < PREFETCH_ROWS
        return self

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> "Cursor":
        self._rows.clear()
        self._read_all = True
        await super().executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        if self._rows:
            return self._rows.popleft()
        if self._read_all:
            return None
        row = await super().fetchone()
        self._read_all = row is None
        return row

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        wanted = self.arraysize if size is None else size
        rows = [self._rows.popleft() for _ in range(min(wanted, len(self._rows)))]
        if len(rows) < wanted and not self._read_all:
            more = list(await super().fetchmany(wanted - len(rows)))
            self._read_all = len(more) < wanted - len(rows)
            rows.extend(more)
        return rows

    async def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        if not self._read_all:
            rows.extend(await super().fetchall())
            self._read_all = True
        return rows

    async def close(self) -> None:
        self._rows.clear()
        if not self._read_all:
            await super().close()
            self._read_all = True


class Connection(aiosqlite.Connection):
    @contextmanager
    async def cursor(self) -> aiosqlite.Cursor:
        return Cursor(self, self._conn.cursor())

    # With no transaction open, sqlite3's commit() and rollback() do nothing: neither makes the
    # trip then. A session that only read opened none, and its connection is rolled back when it
    # goes back to the pool.
    async def commit(self) -> None:
        if self._conn.in_transaction:
            await super().commit()

    async def rollback(self) -> None:
        if self._conn.in_transaction:
            await super().rollback()


def connect(database: str, **options: Any) -> Connection:
    """As aiosqlite.connect(), with this module's cursors; SQLAlchemy's `async_creator`."""

    def connector() -> sqlite3.Connection:
        opened: sqlite3.Connection = sqlite3.connect(database, **options)
        return opened

    connection = Connection(connector, iter_chunk_size=64)
    # As SQLAlchemy makes aiosqlite's: the thread does not keep the process alive at exit.
    connection._thread.daemon = True
    return connection
