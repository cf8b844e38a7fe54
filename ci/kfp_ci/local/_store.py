"""SQLite storage of the embedded server: one JSON document per resource, packages by content hash.

Stdlib ``sqlite3`` in WAL mode behind one lock, so calls from the API threads, the scheduler and the run
monitors are serialised and safe. Records are plain dicts in the server's canonical (v2beta1-like) form;
``_app`` renders them for each API generation.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

Record = dict[str, Any]
Records = list[Record]

KINDS = ("pipeline", "version", "experiment", "run", "recurring")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    namespace TEXT NOT NULL DEFAULT '',
    parent TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS objects_kind_parent ON objects (kind, parent);
CREATE INDEX IF NOT EXISTS objects_kind_name ON objects (kind, parent, namespace, name);
CREATE TABLE IF NOT EXISTS packages (hash TEXT PRIMARY KEY, content BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""


def new_id() -> str:
    return str(uuid.uuid4())


class Store:
    """Thread-safe document store over one SQLite file (``<data_dir>/kfp.sqlite``)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "kfp.sqlite"
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM objects").fetchone()
        self._seq = int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------------------------------ objects
    def insert(self, kind: str, record: Record, *, unique_name: bool = False) -> bool:
        """Insert ``record`` (needs ``id``, ``created_at``). With ``unique_name``, refuse (return False) when a record
        of the same kind, parent and namespace has the same ``name``; check and insert are atomic."""
        with self._lock:
            if unique_name:
                found = self._db.execute(
                    "SELECT 1 FROM objects WHERE kind = ? AND parent = ? AND namespace = ? AND name = ? LIMIT 1",
                    (kind, record.get("_parent") or "", record.get("_ns") or "", record.get("name") or ""),
                ).fetchone()
                if found:
                    return False
            self._seq += 1
            self._db.execute(
                "INSERT INTO objects (kind, id, namespace, parent, name, created_at, seq, data) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (kind, record["id"], record.get("_ns") or "", record.get("_parent") or "", record.get("name") or "",
                 float(record["created_at"]), self._seq, json.dumps(record)),
            )
            return True

    def save(self, kind: str, record: Record) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE objects SET data = ?, name = ? WHERE kind = ? AND id = ?",
                (json.dumps(record), record.get("name") or "", kind, record["id"]),
            )

    def update(self, kind: str, record_id: str, change: Callable[[Record], Any]) -> Record | None:
        """Read-modify-write one record atomically; ``change`` mutates it in place. Returns the new record."""
        with self._lock:
            record = self.get(kind, record_id)
            if record is None:
                return None
            change(record)
            self.save(kind, record)
            return record

    def get(self, kind: str, record_id: str) -> Record | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM objects WHERE kind = ? AND id = ?", (kind, record_id)).fetchone()
        return json.loads(row[0]) if row else None

    def list(self, kind: str, *, parent: str | None = None, namespace: str | None = None) -> Records:
        """All records of ``kind`` (oldest first), optionally only those under ``parent`` / in ``namespace``."""
        sql = "SELECT data FROM objects WHERE kind = ?"
        args: list[Any] = [kind]
        if parent is not None:
            sql += " AND parent = ?"
            args.append(parent)
        if namespace is not None:
            sql += " AND namespace = ?"
            args.append(namespace)
        sql += " ORDER BY seq"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def delete(self, kind: str, record_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM objects WHERE kind = ? AND id = ?", (kind, record_id))
            return cur.rowcount > 0

    def delete_where(self, kind: str, ids: Iterable[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM objects WHERE kind = ? AND id = ?", [(kind, i) for i in ids])

    # ----------------------------------------------------------------------------------------- packages
    def put_package(self, content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO packages (hash, content) VALUES (?, ?)", (digest, content))
        return digest

    def package(self, digest: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT content FROM packages WHERE hash = ?", (digest,)).fetchone()
        return bytes(row[0]) if row else None

    def package_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM packages").fetchone()[0])

    # ---------------------------------------------------------------------------------------- artifacts
    def set_run_artifacts(self, run_id: str, artifacts: Records) -> None:
        with self._lock:
            self._db.execute("DELETE FROM artifacts WHERE run_id = ?", (run_id,))
            self._db.executemany(
                "INSERT INTO artifacts (run_id, seq, data) VALUES (?, ?, ?)",
                [(run_id, i, json.dumps(a)) for i, a in enumerate(artifacts)],
            )

    def run_exists(self, run_id: str) -> bool:
        return self.get("run", run_id) is not None

    def run_artifacts(self, run_id: str) -> Records:
        """Output artifacts and parameters of an executed run, one dict per artifact:
        ``{"run_id", "task", "name", "type" (schema title, e.g. system.Metrics), "uri", "metadata": {...},
        "parameters": {task output parameters}}``."""
        with self._lock:
            rows = self._db.execute("SELECT data FROM artifacts WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]


def now() -> float:
    return time.time()
