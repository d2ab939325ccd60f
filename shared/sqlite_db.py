"""One SQLite file shared by threads, set up for durability: what both services' stores use.

WAL journal (readers never block the writer) and ``synchronous=FULL`` (a committed write
survives a crash: the services acknowledge work only after it is committed). One connection
guarded by a lock; ``transaction()`` groups statements into one atomic commit.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Database:
    def __init__(self, path: str | Path, schema: str = ""):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        if schema:
            self.script(schema)

    def script(self, sql: str) -> None:
        with self._lock:
            self._db.executescript(sql)

    def execute(self, sql: str, args: tuple = ()) -> int:
        """Run one statement; returns the rows it changed."""
        with self._lock:
            return self._db.execute(sql, args).rowcount

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        with self._lock:
            self._db.executemany(sql, rows)

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """Statements on the yielded cursor commit together, or not at all."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()
