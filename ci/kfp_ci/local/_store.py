"""SQLite storage of the embedded server: one JSON document per resource, packages by content hash.

Stdlib ``sqlite3`` in WAL mode behind one lock, so calls from the API threads, the scheduler and the run
monitors are serialised and safe. Records are plain dicts in the server's canonical (v2beta1-like) form;
``_app`` renders them for each API generation.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
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
CREATE INDEX IF NOT EXISTS objects_kind_seq ON objects (kind, seq);
CREATE INDEX IF NOT EXISTS objects_kind_ns_seq ON objects (kind, namespace, seq);
CREATE INDEX IF NOT EXISTS objects_kind_created ON objects (kind, created_at, seq);
CREATE INDEX IF NOT EXISTS objects_kind_ns_created ON objects (kind, namespace, created_at, seq);
CREATE INDEX IF NOT EXISTS objects_kind_only_name ON objects (kind, name);
CREATE INDEX IF NOT EXISTS objects_experiment ON objects (kind, json_extract(data, '$.experiment_id'), created_at);
CREATE INDEX IF NOT EXISTS objects_state ON objects (kind, json_extract(data, '$.state'));
CREATE INDEX IF NOT EXISTS objects_pipeline ON objects (kind, json_extract(data, '$.pipeline_id'), seq);
CREATE TABLE IF NOT EXISTS mlmd_ids (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS packages (hash TEXT PRIMARY KEY, content BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""


# fields kept in their own (indexed) columns; every other field is read from the JSON document
_COLUMNS = {"id": "id", "name": "name", "namespace": "namespace", "_ns": "namespace", "parent": "parent",
            "_parent": "parent", "created_at": "created_at", "seq": "seq"}
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _text(value: Any) -> str:
    return str(float(value or 0))


def _conditions(kind: str, where: Sequence[tuple[str, Sequence[Any]]]) -> tuple[str, list[Any]]:
    conditions = " AND ".join(["kind = ?", *(f"({sql})" for sql, _ in where)])
    args: list[Any] = [kind]
    for _, values in where:
        args.extend(values)
    return conditions, args


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
        self._db.create_function("kfp_text", 1, _text, deterministic=True)
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM objects").fetchone()
        self._seq = int(row[0])
        self._counts: dict[tuple[str, tuple[Any, ...]], tuple[int, int]] = {}  # see ``page(stable_count=True)``
        self._analyzed_seq = 0
        self._analyze()
        self.mlmd_ids = MlmdIds(self._db, self._lock)

    def _analyze(self) -> None:
        """Refresh the query planner's statistics (sampled: ~30 ms at 100,000 runs), at start and as the store
        doubles, so that e.g. a run looked up by name uses the name index rather than walking the newest-first
        one."""
        self._db.execute("PRAGMA analysis_limit=400")
        self._db.execute("ANALYZE")
        self._analyzed_seq = self._seq

    def _grown(self) -> None:
        if self._seq - self._analyzed_seq > max(1000, self._analyzed_seq):
            self._analyze()

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
            self._grown()
            return True

    def insert_many(self, kind: str, records: Iterable[Record]) -> int:
        """Insert many records (each needs ``id``, ``created_at``) in one transaction, in order. Returns how many."""
        with self._lock:
            rows = []
            for record in records:
                self._seq += 1
                rows.append((kind, record["id"], record.get("_ns") or "", record.get("_parent") or "",
                             record.get("name") or "", float(record["created_at"]), self._seq, json.dumps(record)))
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO objects (kind, id, namespace, parent, name, created_at, seq, data) "
                    "VALUES (?,?,?,?,?,?,?,?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                self._seq -= len(rows)
                raise
            self._db.execute("COMMIT")
            self._grown()
            return len(rows)

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

    @staticmethod
    def column(name: str) -> str:
        """The SQL expression of a record field: its own column, or ``json_extract`` over the document (indexed for
        ``experiment_id`` and ``state``)."""
        if name in _COLUMNS:
            return _COLUMNS[name]
        if not _FIELD.match(name):
            raise ValueError(f"not a field name: {name!r}")
        return f"json_extract(data, '$.{name}')"

    def page(self, kind: str, where: Sequence[tuple[str, Sequence[Any]]] = (), *, order: str = "seq",
             limit: int | None = None, offset: int = 0, stable_count: bool = False) -> tuple[Records, int]:
        """One page of the records of ``kind`` matching every ``(condition, arguments)`` of ``where``, in ``order``
        (SQL over the columns and :meth:`column` expressions), and how many match in all.

        ``stable_count``: ``where`` reads only fields a record never changes after its insertion (namespace, parent,
        experiment), so the total is remembered and brought up to date by counting only the records inserted
        since (any delete forgets every remembered total)."""
        conditions, args = _conditions(kind, where)
        window = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
        # conditions and order come from the server's code (field names checked by ``column``); values are bound
        select = f"SELECT data FROM objects WHERE {conditions} ORDER BY {order}{window}"  # noqa: S608
        with self._lock:
            rows = self._db.execute(select, args).fetchall()
            if limit is None or (offset == 0 and len(rows) < limit):
                total = len(rows)
            elif stable_count:
                total = self._stable_count(conditions, args)
            else:
                total = self._count(conditions, args)
        return [json.loads(r[0]) for r in rows], total

    def _stable_count(self, conditions: str, args: Sequence[Any]) -> int:
        key = (conditions, tuple(args))
        known = self._counts.get(key)
        if known is None:
            total = self._count(conditions, args)
        elif known[1] == self._seq:
            return known[0]
        else:  # only the records inserted since: a range of the (kind, seq) index
            since = f"SELECT COUNT(*) FROM objects INDEXED BY objects_kind_seq WHERE {conditions} AND seq > ?"  # noqa: S608
            total = known[0] + int(self._db.execute(since, [*args, known[1]]).fetchone()[0])
        if len(self._counts) > 1000:
            self._counts.clear()
        self._counts[key] = (total, self._seq)
        return total

    def count(self, kind: str, where: Sequence[tuple[str, Sequence[Any]]] = ()) -> int:
        """How many records of ``kind`` match ``where`` (as in :meth:`page`)."""
        conditions, args = _conditions(kind, where)
        with self._lock:
            return self._count(conditions, args)

    def count_by(self, kind: str, field: str, where: Sequence[tuple[str, Sequence[Any]]] = ()) -> dict[str, int]:
        """How many records of ``kind`` match ``where``, per value of ``field`` (one grouped query)."""
        conditions, args = _conditions(kind, where)
        expr = self.column(field)
        sql = f"SELECT {expr}, COUNT(*) FROM objects WHERE {conditions} GROUP BY {expr}"  # noqa: S608
        with self._lock:
            return {str(value): int(n) for value, n in self._db.execute(sql, args).fetchall() if value is not None}

    def _count(self, conditions: str, args: Sequence[Any]) -> int:
        return int(self._db.execute(f"SELECT COUNT(*) FROM objects WHERE {conditions}", args).fetchone()[0])  # noqa: S608

    def unfinished_runs(self, parent: str | None = None, terminal: Sequence[str] = ()) -> Records:
        """Runs (of the recurring run ``parent`` when given) whose state is not one of ``terminal``."""
        where: list[tuple[str, Sequence[Any]]] = [
            (f"COALESCE({self.column('state')}, '') NOT IN ({', '.join('?' * len(terminal))})", tuple(terminal))]
        if parent is not None:
            where.append(("parent = ?", (parent,)))
        return self.page("run", where)[0]

    def recent(self, kind: str, limit: int, *, namespace: str | None = None, parent: str | None = None) -> Records:
        """The ``limit`` newest records of ``kind`` (newest first), reading only those rows."""
        where: list[tuple[str, Sequence[Any]]] = []
        if namespace is not None:
            where.append(("namespace = ?", (namespace,)))
        if parent is not None:
            where.append(("parent = ?", (parent,)))
        return self.page(kind, where, order="seq DESC", limit=limit)[0]

    def find(self, kind: str, name: str, *, namespace: str | None = None, parent: str | None = None) -> Record | None:
        """The first (oldest) record of ``kind`` named ``name`` (in ``namespace`` / under ``parent`` when given)."""
        where: list[tuple[str, Sequence[Any]]] = [("name = ?", (name,))]
        if namespace is not None:
            where.append(("namespace = ?", (namespace,)))
        if parent is not None:
            where.append(("parent = ?", (parent,)))
        found, _ = self.page(kind, where, limit=1)
        return found[0] if found else None

    def newest(self, kind: str, parent: str) -> Record | None:
        """The child of ``parent`` created last by the second, the last inserted among those of that second."""
        found, _ = self.page(kind, [("parent = ?", (parent,))], order="CAST(created_at AS INTEGER) DESC, seq DESC",
                             limit=1)
        return found[0] if found else None

    def delete(self, kind: str, record_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM objects WHERE kind = ? AND id = ?", (kind, record_id))
            self._counts.clear()
            return cur.rowcount > 0

    def delete_where(self, kind: str, ids: Iterable[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM objects WHERE kind = ? AND id = ?", [(kind, i) for i in ids])
            self._counts.clear()

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


class MlmdIds:
    """ML Metadata ids (contexts, executions, artifacts), kept in the store so that the runs' details and the ML
    Metadata route name the same things alike, across restarts. Keys: ``("context", run_id)`` (the run's
    ``system.PipelineRun`` context), ``("pipeline", name)`` (its ``system.Pipeline`` context), ``("execution",
    run_id, task)``, ``("artifact", run_id, task, output name)``."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self._db = db
        self._lock = lock

    def id(self, *key: str) -> int:
        return self.ids([key])[0]

    def ids(self, keys: Sequence[Sequence[str]]) -> list[int]:
        """The ids of ``keys``, allocating those not seen yet (one query when all are known)."""
        texts = [json.dumps(list(k)) for k in keys]
        if not texts:
            return []
        with self._lock:
            known = self._lookup(texts)
            missing = [t for t in dict.fromkeys(texts) if t not in known]
            if missing:
                self._db.executemany("INSERT OR IGNORE INTO mlmd_ids (key) VALUES (?)", [(t,) for t in missing])
                known.update(self._lookup(missing))
        return [known[t] for t in texts]

    def _lookup(self, texts: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(texts), 500):
            chunk = texts[start:start + 500]
            query = f"SELECT key, id FROM mlmd_ids WHERE key IN ({', '.join('?' * len(chunk))})"  # noqa: S608
            found.update((str(k), int(i)) for k, i in self._db.execute(query, chunk).fetchall())
        return found

    def known(self, *key: str) -> int | None:
        """The id of ``key`` if one was given out (allocates none)."""
        with self._lock:
            found = self._lookup([json.dumps(list(key))])
        return next(iter(found.values()), None)

    def key(self, ident: int) -> tuple[str, ...] | None:
        with self._lock:
            row = self._db.execute("SELECT key FROM mlmd_ids WHERE id = ?", (int(ident),)).fetchone()
        return tuple(json.loads(row[0])) if row else None


def now() -> float:
    return time.time()
