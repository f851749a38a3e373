"""Analytics state in embedded SQLite: baselines, SLO buckets, anomaly history, budgets, alerts.

One file, ``<state-dir>/gensight-state.sqlite``, in WAL mode. Each analyser hands over a JSON-able
snapshot; all of them are written in one transaction, so a ``kill -9`` leaves either the previous
or the new snapshot, never a mix. Snapshots are taken every ``snapshot_interval_s`` (wall clock —
it only bounds how much is lost on a crash, it never changes results) and on shutdown.

A file that is not a Gensight state database, is corrupt, or has another schema version is never
reset silently: opening it raises :class:`StateError` naming the file and the way out — start with
``--reset-state`` (the old file is kept, renamed ``*.bak-<unix time>``) or move the file away.

A lock file (``gensight-state.lock``, ``flock``) keeps two processes from writing the same state:
while ``gensight serve`` runs, ``gensight baseline`` must go through the admin endpoint.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
STATE_FILE = "gensight-state.sqlite"
LOCK_FILE = "gensight-state.lock"
APP_ID = "gensight"

WAY_OUT = ("start with --reset-state to begin from empty state (the old file is kept as *.bak-<time>), "
           "or move the file away")


class StateError(RuntimeError):
    """The state file cannot be used as it is; the message names the file and the way out."""


class StateLocked(StateError):
    pass


class StateStore:
    def __init__(self, state_dir: str | os.PathLike[str], *, reset: bool = False, lock: bool = True) -> None:
        self.dir = Path(state_dir)
        try:
            # owner-only: the state holds series keys and hashed tenant ids (docs/security.md)
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StateError(f"state directory {self.dir} cannot be created: {exc}") from None
        self.path = self.dir / STATE_FILE
        self._lock_fd: int | None = None
        if lock:
            self._acquire_lock()
        self._mu = threading.Lock()
        if reset and self.path.exists():
            stamp = int(time.time())
            for suffix in ("", "-wal", "-shm"):
                p = Path(str(self.path) + suffix)
                if p.exists():
                    p.rename(Path(f"{self.path}{suffix}.bak-{stamp}"))
        self._db = self._open()

    def _acquire_lock(self) -> None:
        import fcntl

        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StateLocked(
                f"state directory {self.dir} is in use by another gensight process (lock {self.dir / LOCK_FILE}); "
                "while `gensight serve` runs, use `gensight baseline --admin-url URL --token T`") from None
        self._lock_fd = fd

    def _open(self) -> sqlite3.Connection:
        existed = self.path.exists() and self.path.stat().st_size > 0
        if not self.path.exists():
            # create it owner-only; SQLite gives its -wal/-shm files the database file's mode
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        try:
            db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StateError(f"state file {self.path} cannot be opened ({exc}); {WAY_OUT}") from None
        try:
            if existed:
                self._check(db)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if not existed:
                db.execute("BEGIN")
                db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                db.execute("CREATE TABLE components (name TEXT PRIMARY KEY, payload TEXT NOT NULL, "
                           "updated_unix_s REAL NOT NULL)")
                db.executemany("INSERT INTO meta VALUES (?, ?)",
                               [("application", APP_ID), ("schema_version", str(SCHEMA_VERSION))])
                db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StateError(f"state file {self.path} is not a readable Gensight state database ({exc}); "
                             f"{WAY_OUT}") from None
        except StateError:
            db.close()
            raise
        return db

    def _check(self, db: sqlite3.Connection) -> None:
        row = db.execute("PRAGMA quick_check").fetchone()
        if not row or row[0] != "ok":
            raise StateError(f"state file {self.path} is corrupt (quick_check: {row[0] if row else 'no answer'}); {WAY_OUT}")
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError:
            raise StateError(f"state file {self.path} is an SQLite file but not a Gensight state database; "
                             f"{WAY_OUT}") from None
        if meta.get("application") != APP_ID:
            raise StateError(f"state file {self.path} was not written by gensight; {WAY_OUT}")
        version = meta.get("schema_version")
        if version != str(SCHEMA_VERSION):
            raise StateError(f"state file {self.path} has schema version {version}, this gensight reads version "
                             f"{SCHEMA_VERSION}; {WAY_OUT}")

    def save(self, components: Mapping[str, Any]) -> None:
        """Write every component's snapshot in one transaction."""
        now = time.time()
        rows = [(name, json.dumps(payload, separators=(",", ":")), now)
                for name, payload in components.items()]
        with self._mu:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO components VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                    "payload=excluded.payload, updated_unix_s=excluded.updated_unix_s", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def load(self) -> dict[str, Any]:
        with self._mu:
            rows = self._db.execute("SELECT name, payload FROM components").fetchall()
        out = {}
        for name, payload in rows:
            try:
                out[name] = json.loads(payload)
            except ValueError:
                raise StateError(f"state file {self.path}: component {name!r} is not valid JSON; {WAY_OUT}") from None
        return out

    def close(self) -> None:
        with self._mu:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
