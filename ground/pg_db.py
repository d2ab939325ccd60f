"""A PostgreSQL database with the interface of ``shared.sqlite_db.Database``, for the ground
segment's shared store (``ground.store``, distributed mode: several stations and counting
workers on one database).

psycopg 3 with a connection pool (``psycopg_pool``), so the gRPC servicer's threads, the
counting worker and the REST routes each take their own connection. Statements are written
once, in the SQLite dialect the embedded store uses, and translated here: ``?`` placeholders
become ``%s``; ``INSERT OR IGNORE`` becomes ``INSERT ... ON CONFLICT DO NOTHING``; the schema's
``BLOB`` and ``REAL`` become ``BYTEA`` and ``DOUBLE PRECISION``. Every statement outside
``transaction()`` commits on its own (autocommit), as in the SQLite wrapper; a transaction
runs at PostgreSQL's default isolation, each of whose statements is idempotent by key, so two
stations committing the same part concurrently store it once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

_IGNORE = re.compile(r"^\s*INSERT OR IGNORE INTO", re.I)


def translate(sql: str) -> str:
    """The SQLite-dialect statement in PostgreSQL's."""
    out = sql.replace("?", "%s")
    if _IGNORE.match(out):
        out = _IGNORE.sub("INSERT INTO", out).rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    return out


def translate_schema(schema: str) -> str:
    return re.sub(r"\bREAL\b", "DOUBLE PRECISION", re.sub(r"\bBLOB\b", "BYTEA", schema))


class _Cursor:
    """A transaction's cursor that takes SQLite-dialect statements."""

    def __init__(self, cur):
        self._cur = cur

    def execute(self, sql: str, args: tuple = ()):
        self._cur.execute(translate(sql), args)
        return self._cur

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        self._cur.executemany(translate(sql), rows)


SCHEMA_LOCK = 0x7A4F05E  # the advisory lock key of schema creation (any fixed number)


class PgDatabase:
    def __init__(self, url: str, schema: str = "", max_size: int = 16):
        from psycopg_pool import ConnectionPool

        self.url = url
        self.pool = ConnectionPool(url, min_size=1, max_size=max_size, open=True,
                                   kwargs={"autocommit": True})
        self.pool.wait(timeout=30)
        if schema:
            self.script(schema)

    def script(self, sql: str) -> None:
        # One transaction under an advisory lock: two processes starting at once (a station
        # and a worker) would otherwise race on CREATE TABLE IF NOT EXISTS, which PostgreSQL
        # does not make atomic (a duplicate-key error on its catalogue).
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for statement in translate_schema(sql).split(";"):
                if statement.strip():
                    conn.execute(statement)

    def execute(self, sql: str, args: tuple = ()) -> int:
        """Run one statement; returns the rows it changed."""
        with self.pool.connection() as conn:
            return conn.execute(translate(sql), args).rowcount

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(translate(sql), rows)

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self.pool.connection() as conn:
            return conn.execute(translate(sql), args).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[_Cursor]:
        """Statements on the yielded cursor commit together, or not at all."""
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield _Cursor(cur)

    def close(self) -> None:
        self.pool.close()
