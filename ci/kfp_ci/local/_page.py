"""The server's small KFP UI: server-rendered HTML and SVG, no build step and no script beyond one line that turns
KFP's UI links (``/#/runs/details/<id>``, the form ``deploy`` prints) into this page's paths.

Pages: ``/`` (pipelines, recent runs, recurring runs with their next fire times), ``/pipelines/<id>`` (versions and
runs of one pipeline), ``/runs/<id>`` (the run's graph coloured by state, each step's inputs, outputs, log and error,
the run's metrics as the gate reads them). Every page refreshes itself while something it shows is running. In
multi-user mode a page shows only the caller's namespaces (the ``kubeflow-userid`` identity the login puts on the
request); everything from the store is escaped.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfp_ci.local._dag import COLOURS, Node, graph_of, render_svg
from kfp_ci.local._executor import TERMINAL
from kfp_ci.local._fields import ts
from kfp_ci.local._http import Resp
from kfp_ci.local._worker import strip_ansi

if TYPE_CHECKING:
    from kfp_ci.local._model import Model
    from kfp_ci.local._store import Record

RECENT_RUNS = 100
LOG_LIMIT = 64_000
_ID = r"([A-Za-z0-9][A-Za-z0-9._-]{0,127})"
_ROUTES = [(re.compile(rf"^/runs/{_ID}/?$"), "run"), (re.compile(rf"^/pipelines/{_ID}/?$"), "pipeline")]
_TASK_START = re.compile(r"Executing task '([^']+)'")
_TASK_END = re.compile(r"Task '([^']+)' finished with status")

_STYLE = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1f1f1f;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:.7rem 1.5rem;display:flex;gap:1.5rem;align-items:baseline}
header a{color:#fff;text-decoration:none;font-weight:600}header .muted{color:#c9d6e3}
main{padding:1rem 1.5rem 3rem;max-width:1200px}h1{font-size:1.35rem;margin:.6rem 0}
h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
table{border-collapse:collapse;background:#fff;margin-bottom:.5rem;width:100%}
td,th{border-bottom:1px solid #e2e2e2;padding:.35rem .6rem;text-align:left;vertical-align:top;font-size:.92rem}
th{background:#f0f3f6;font-weight:600}a{color:#1a5fa8}.muted{color:#6b6b6b}
.state{display:inline-block;padding:0 .45rem;border-radius:.7rem;font-size:.8rem;font-weight:600;border:1px solid}
pre{background:#f4f4f4;padding:.5rem;overflow:auto;max-height:24rem;font-size:.8rem;white-space:pre-wrap}
.error{color:#b00020;white-space:pre-wrap}dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}
dt{font-weight:600}dd{margin:0}.graph{overflow:auto;background:#fff;border:1px solid #e2e2e2;padding:.3rem}
code{font-size:.85rem}details summary{cursor:pointer}"""

_HASH_LINKS = ("<script>(function(){var m=location.hash.match(/^#\\/(runs|pipelines)\\/details\\/([A-Za-z0-9._-]+)/);"
               "if(m){location.replace(m[1]+'/'+m[2]);}})();</script>")


# ----------------------------------------------------------------------------------------------------- entry
def page_response(model: Model, path: str, user: str | None, prefix: str) -> Resp | None:
    """The page for ``path`` (already without the ``/pipeline`` prefix), or None when it is not a page path."""
    view = _View(model, user, prefix)
    if path in ("/", "/index.html"):
        return view.answer(view.index())
    for pattern, kind in _ROUTES:
        match = pattern.match(path)
        if match:
            ident = match.group(1)
            return view.answer(view.run(ident) if kind == "run" else view.pipeline(ident))
    return None


def render_page(model: Model, user: str | None = None) -> str:
    """The overview page (``/``) as HTML."""
    view = _View(model, user, "")
    return view.html(*view.index())


class _NotFound(Exception):
    pass


class _View:
    def __init__(self, model: Model, user: str | None, prefix: str) -> None:
        self.m = model
        self.store = model.store
        self.user = user
        self.prefix = prefix
        self.refresh = False
        self.now = time.time()

    # ------------------------------------------------------------------------------------------- scope
    def namespaces(self) -> tuple[str, ...] | None:
        """None: everything (single-user); otherwise the caller's namespaces (none without an identity)."""
        if not self.m.multi_user:
            return None
        if not self.user:
            return ()
        return self.m.namespaces_of(self.user)

    def visible(self, record: Record | None) -> bool:
        if record is None:
            return False
        allowed = self.namespaces()
        return allowed is None or (record.get("_ns") or "") in allowed

    def records(self, kind: str, *, parent: str | None = None) -> list[Record]:
        allowed = self.namespaces()
        if allowed is None:
            return self.store.list(kind, parent=parent)
        out: list[Record] = []
        for ns in allowed:
            out.extend(self.store.list(kind, parent=parent, namespace=ns))
        return sorted(out, key=lambda r: float(r.get("created_at") or 0))

    def recent_runs(self, *, pipeline_id: str | None = None) -> tuple[list[Record], int]:
        """The newest runs (at most ``RECENT_RUNS``, newest first) the caller may see, and how many there are:
        one SQL page, however many runs the store holds."""
        where: list[tuple[str, Any]] = []
        allowed = self.namespaces()
        if allowed is not None:
            if not allowed:
                return [], 0
            where.append((f"namespace IN ({', '.join('?' * len(allowed))})", tuple(allowed)))
        if pipeline_id is not None:
            where.append((f"{self.store.column('pipeline_id')} = ?", (pipeline_id,)))
        return self.store.page("run", where, order="seq DESC", limit=RECENT_RUNS)

    def runs_per_version(self, pipeline_id: str) -> dict[str, int]:
        return self.store.count_by("run", "version_id", [(f"{self.store.column('pipeline_id')} = ?", (pipeline_id,))])

    # ------------------------------------------------------------------------------------------ output
    def answer(self, page: tuple[str, str] | None) -> Resp:
        if page is None:
            return Resp(404, self.html("Not found", '<h1>Not found</h1><p>There is nothing here, or it is in a '
                                       'namespace you cannot see. <a href="./">Back to the overview</a>.</p>'),
                        "text/html; charset=utf-8")
        return Resp(200, self.html(*page), "text/html; charset=utf-8")

    def html(self, title: str, body: str) -> str:
        refresh = '<meta http-equiv="refresh" content="2">' if self.refresh else ""
        who = ""
        if self.m.multi_user:
            who = f'<span class="muted">{escape(self.user)}</span>' if self.user else \
                '<span class="muted">not signed in</span>'
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f'<base href="{escape(self.prefix)}/">{refresh}'
                f"<title>{escape(title)} - kfp-ci local KFP</title><style>{_STYLE}</style>{_HASH_LINKS}</head><body>"
                f'<header><a href="./">kfp-ci local KFP</a><span class="muted">{escape(self.m.compat.tag)}</span>'
                f"{who}</header><main>{body}</main></body></html>")

    # ------------------------------------------------------------------------------------------- pages
    def index(self) -> tuple[str, str]:
        if self.m.multi_user and not self.user:
            return "Sign in", ("<h1>Sign in</h1><p>This server runs in multi-user mode: sign in through the login "
                               "page to see your namespaces' pipelines and runs.</p>")
        pipelines = self.records("pipeline")
        versions = self.records("version")
        by_pipeline: dict[str, list[Record]] = {}
        for v in versions:
            by_pipeline.setdefault(str(v.get("pipeline_id")), []).append(v)
        names = {p["id"]: p["name"] for p in pipelines}
        vnames = {v["id"]: v["name"] for v in versions}
        p_rows = []
        for p in reversed(pipelines):
            vs = by_pipeline.get(p["id"], [])
            latest = vs[-1]["name"] if vs else "-"
            p_rows.append([_link(f"pipelines/{p['id']}", p["name"]), escape(p.get("_ns") or "-"), str(len(vs)),
                           escape(latest), escape(ts(p["created_at"]) or "")])
        recent, total = self.recent_runs()
        body = [
            "<h1>Overview</h1><p class=\"muted\">What CI deployed and ran. The API is under <code>/apis</code> "
            "and <code>/pipeline/apis</code>.</p>",
            "<h2>Pipelines</h2>",
            _table("pipelines", ["Name", "Namespace", "Versions", "Latest version", "Created"], p_rows,
                   "No pipelines yet."),
            f"<h2>Runs</h2><p class=\"muted\">The {len(recent)} newest of {total}.</p>" if total else
            "<h2>Runs</h2>",
            self.run_table("runs", recent, names, vnames),
            "<h2>Recurring runs</h2>",
            self.recurring_table(names, vnames),
        ]
        return "Overview", "".join(body)

    def run_table(self, table_id: str, runs: Iterable[Record], names: dict[str, str],
                  vnames: dict[str, str]) -> str:
        rows = []
        for r in runs:
            state = str(r.get("state") or "")
            if state not in TERMINAL:
                self.refresh = True
            rows.append([
                _link(f"runs/{r['id']}", r["name"]),
                _link(f"pipelines/{r['pipeline_id']}", names[r["pipeline_id"]]) if r.get("pipeline_id") in names
                else escape("(inline)" if r.get("inline") else "-"),
                escape(vnames.get(r.get("version_id") or "", "-")),
                _state(state), escape(self.duration(r)), escape(ts(r["created_at"]) or ""),
                f'<span class="error">{escape(_first_line(strip_ansi(r.get("error") or "")))}</span>',
            ])
        return _table(table_id, ["Run", "Pipeline", "Version", "State", "Duration", "Created", "Error"], rows,
                      "No runs yet.")

    def recurring_table(self, names: dict[str, str], vnames: dict[str, str]) -> str:
        from kfp_ci.local._scheduler import describe_next, next_after

        rows = []
        for rec in reversed(self.records("recurring")):
            trig = rec.get("trigger") or {}
            when = f"cron {trig['cron']}" if trig.get("cron") else f"every {trig.get('interval')} s"
            target = vnames.get(rec.get("version_id") or "", "latest version") if rec.get("pipeline_id") \
                else "(inline)"
            upcoming: list[str] = []
            when_next = describe_next(rec, self.now)
            if when_next is not None:
                upcoming.append(ts(when_next) or "")
                try:
                    after = when_next
                    for _ in range(2):
                        after = next_after(trig, after)
                        end = trig.get("end")
                        if after == float("inf") or (end and after > float(end)):
                            break
                        upcoming.append(ts(after) or "")
                except (ValueError, TypeError, OverflowError):
                    pass
            status = "enabled" if rec.get("enabled") else "disabled"
            if rec.get("error"):
                status += f": {_first_line(str(rec['error']))}"
            rows.append([escape(rec["name"]),
                         _link(f"pipelines/{rec['pipeline_id']}", names[rec["pipeline_id"]])
                         if rec.get("pipeline_id") in names else "-",
                         escape(target), escape(when), escape(status),
                         escape(", ".join(upcoming) if upcoming else "-")])
        return _table("recurring-runs", ["Name", "Pipeline", "Version", "Trigger", "Status", "Next runs"], rows,
                      "No recurring runs yet.")

    def pipeline(self, ident: str) -> tuple[str, str] | None:
        p = self.store.get("pipeline", ident)
        if p is None or not self.visible(p):
            return None
        versions = self.store.list("version", parent=ident)
        names = {p["id"]: p["name"]}
        vnames = {v["id"]: v["name"] for v in versions}
        runs, _total = self.recent_runs(pipeline_id=ident)
        counts = self.runs_per_version(ident)
        v_rows = [[escape(v["name"]), escape(ts(v["created_at"]) or ""), str(counts.get(v["id"], 0)),
                   escape(v.get("description") or "")] for v in reversed(versions)]
        body = [
            f"<h1>Pipeline {escape(p['name'])}</h1>",
            _dl([("Namespace", escape(p.get("_ns") or "-")), ("Created", escape(ts(p["created_at"]) or "")),
                 ("Description", escape(p.get("description") or "-")), ("Id", f"<code>{escape(p['id'])}</code>")]),
            "<h2>Versions</h2>",
            _table("versions", ["Version", "Created", "Runs", "Description"], v_rows, "No versions yet."),
            "<h2>Runs</h2>",
            self.run_table("runs", runs, names, vnames),
        ]
        return f"Pipeline {p['name']}", "".join(body)

    def run(self, ident: str) -> tuple[str, str] | None:
        r = self.store.get("run", ident)
        if r is None or not self.visible(r):
            return None
        state = str(r.get("state") or "")
        if state not in TERMINAL:
            self.refresh = True
        pipeline = self.store.get("pipeline", r["pipeline_id"]) if r.get("pipeline_id") else None
        version = self.store.get("version", r["version_id"]) if r.get("version_id") else None
        spec = self.spec(r)
        tasks = [t for t in r.get("tasks") or [] if isinstance(t, dict)]
        steps = [t for t in tasks if t.get("type") in (None, "Pod")]  # Argo's DAG/TaskGroup nodes are groups
        artifacts = self.store.run_artifacts(ident)
        logs = _task_logs(self.run_log(ident))
        nodes = graph_of(spec)
        _colour(nodes, tasks, state)
        anchors = {n.key: f"task-{_slug(n.key)}" for n in nodes}
        info = [("State", _state(state)), ("Pipeline", _link(f"pipelines/{pipeline['id']}", pipeline["name"])
                                         if pipeline else escape("(inline)" if r.get("inline") else "-")),
                ("Version", escape(version["name"]) if version else "-"),
                ("Created", escape(ts(r["created_at"]) or "")), ("Duration", escape(self.duration(r))),
                ("Id", f"<code>{escape(ident)}</code>")]
        if r.get("recurring_run_id"):
            rec = self.store.get("recurring", r["recurring_run_id"])
            info.append(("Recurring run", escape(rec["name"] if rec else r["recurring_run_id"])))
        if r.get("params"):
            info.append(("Parameters", _kv(r["params"])))
        body = [f"<h1>Run {escape(r['name'])}</h1>", _dl(info)]
        if r.get("error"):
            body.append(f'<h2>Error</h2><pre class="error" id="run-error">{escape(strip_ansi(r["error"]))}</pre>')
        body.append('<h2>Graph</h2><div class="graph">' + render_svg(nodes, anchors) + "</div>" + _legend())
        body.append("<h2>Steps</h2>" + self.task_table(nodes, steps, artifacts, logs, anchors))
        body.append("<h2>Metrics</h2>" + _metrics_table(artifacts))
        return f"Run {r['name']}", "".join(body)

    def task_table(self, nodes: list[Node], tasks: list[Record], artifacts: list[Record],
                   logs: dict[str, list[str]], anchors: dict[str, str]) -> str:
        by_name = _by_name(tasks)
        rows: list[tuple[str, list[str]]] = []
        seen: set[str] = set()
        steps: list[tuple[str, str, Record, int]] = []
        for n in sorted(nodes, key=lambda n: (n.level, n.column)):
            if n.kind != "task":
                continue
            found = _find(by_name, n)
            for i, task in enumerate(found or [{"state": n.state if n.state == "SKIPPED" else ""}]):
                seen.add(str(task.get("name") or ""))
                label = n.key if len(found) < 2 else f"{n.key} #{i + 1}"
                steps.append((label, anchors[n.key] if i == 0 else f"{anchors[n.key]}-{i + 1}", task, i))
        for name, found in by_name.items():  # steps the run reported that the graph does not name
            if name and name not in seen:
                for i, task in enumerate(found):
                    steps.append((name, f"task-{_slug(name)}" + (f"-{i + 1}" if i else ""), task, i))
        for key, anchor, task, index in steps:
            name = key.split(" #")[0].rsplit("/", 1)[-1]
            task_name = str(task.get("name") or name)
            parts = logs.get(task_name) or []
            log = parts[index] if index < len(parts) else self.task_log(task)
            inputs = task.get("inputs") or task.get("arguments") or _inputs_from_log(log)
            outs = [a for a in artifacts if a.get("task") in (task_name, name)]
            out_params: dict[str, Any] = {}
            if isinstance(task.get("outputs"), dict):  # this execution's own (a loop iteration's)
                out_params.update({k: v for k, v in task["outputs"].items() if not isinstance(v, dict)})
            else:
                for a in outs:
                    if isinstance(a.get("parameters"), dict):
                        out_params.update(a["parameters"])
            outputs = "".join([_kv(out_params) if out_params else "",
                               "".join(f"<div><b>{escape(str(a.get('name')))}</b> "
                                       f"<span class=\"muted\">{escape(str(a.get('type') or ''))}</span><br>"
                                       f"<code>{escape(str(a.get('uri') or ''))}</code></div>"
                                       for a in outs if a.get("name"))]) or "-"
            error = strip_ansi(str(task.get("error") or ""))
            detail = ""
            if error:
                detail += f'<div class="error">{escape(error)}</div>'
            if log:
                detail += f"<details><summary>log ({log.count(chr(10)) + 1} lines)</summary><pre>{escape(log)}</pre>" \
                          "</details>"
            start, end = task.get("start"), task.get("end")
            took = f"{float(end) - float(start):.1f} s" if isinstance(start, (int, float)) and \
                isinstance(end, (int, float)) else "-"
            rows.append((anchor, [escape(key), _state(str(task.get("state") or "")), escape(took),
                                  _kv(inputs) if inputs else "-", outputs, detail or "-"]))
        if not rows:
            return '<p class="muted" id="tasks-empty">No steps reported yet.</p>'
        head = "".join(f"<th>{h}</th>" for h in ["Step", "State", "Duration", "Inputs", "Outputs", "Log and error"])
        body = "".join(f'<tr id="{escape(anchor)}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
                       for anchor, cells in rows)
        return f'<table id="tasks"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    # ----------------------------------------------------------------------------------------- helpers
    def spec(self, run: Record) -> dict[str, Any]:
        """The run's IR (or Argo workflow), parsed once per package by the model (the page refreshes every 2 s)."""
        if not run.get("package"):
            return {}
        try:
            return self.m.spec_shared(run)  # read only
        except Exception:  # a package the page cannot read still gets its run page, without a graph
            return {}

    def run_log(self, run_id: str) -> str:
        runs_dir = getattr(self.m.executor, "runs_dir", None)
        return _read_log(runs_dir / run_id / "log.txt", LOG_LIMIT * 4) if runs_dir is not None else ""

    def task_log(self, task: Record) -> str:
        """A step's own log file (KFP v1 runs keep one per Argo node), read only inside the server's runs folder."""
        runs_dir = getattr(self.m.executor, "runs_dir", None)
        path = task.get("log")
        if runs_dir is None or not isinstance(path, str) or not path:
            return ""
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(Path(runs_dir).resolve()):
            return ""
        return _read_log(resolved, LOG_LIMIT)

    def duration(self, run: Record) -> str:
        start = float(run.get("created_at") or 0)
        end = run.get("finished_at")
        if end:
            return f"{float(end) - start:.1f} s"
        if str(run.get("state") or "") in TERMINAL:
            return "-"
        return f"{max(0.0, self.now - start):.0f} s so far"


# ------------------------------------------------------------------------------------------- fragments
def _link(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def _state(state: str) -> str:
    fill, stroke = COLOURS.get(state, COLOURS[""])
    return (f'<span class="state" style="background:{fill};color:{stroke};border-color:{stroke}" '
            f'data-state="{escape(state or "NONE")}">{escape(state or "not started")}</span>')


def _table(table_id: str, headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="muted" id="{escape(table_id)}-empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table id="{escape(table_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _dl(items: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _value(value: Any) -> str:
    """A parameter value as JSON; a whole float as an integer (protobuf carries every number as a double)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    return json.dumps(value, default=str)


def _kv(values: Any) -> str:
    if not isinstance(values, dict):
        return f"<code>{escape(_value(values))}</code>"
    return "".join(f"<div><b>{escape(str(k))}</b> = <code>{escape(_value(v))}</code></div>"
                   for k, v in values.items())


def _legend() -> str:
    return ('<p class="muted">' + " ".join(_state(s) for s in ("SUCCEEDED", "RUNNING", "FAILED", "CANCELED")) +
            " " + _state("") + " Dashed: a condition, loop or group of steps.</p>")


def _metrics_table(artifacts: list[Record]) -> str:
    rows = []
    for a in artifacts:
        if a.get("type") != "system.Metrics":
            continue
        for name, value in sorted((a.get("metadata") or {}).items()):
            if name == "display_name":
                continue
            rows.append([escape(str(name)), f"<code>{escape(json.dumps(value, default=str))}</code>",
                         escape(str(a.get("task") or "")), escape(str(a.get("name") or ""))])
    return _table("metrics", ["Metric", "Value", "Step", "Artifact"], rows,
                  "No metrics: the run logged no system.Metrics artifact (yet).")


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 160 else line[:159] + "\u2026"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "step"


_RANK = {"FAILED": 5, "RUNNING": 4, "CANCELED": 3, "PENDING": 2, "SUCCEEDED": 1}


def _by_name(tasks: list[Record]) -> dict[str, list[Record]]:
    """The run's task records by step name (a loop's iterations share their step's name)."""
    out: dict[str, list[Record]] = {}
    for t in tasks:
        out.setdefault(str(t.get("name") or t.get("display_name") or ""), []).append(t)
    return out


def _find(by_name: dict[str, list[Record]], node: Node) -> list[Record]:
    for key in (node.key, node.label, node.key.rsplit("/", 1)[-1]):
        if key in by_name:
            return by_name[key]
    return []


def _colour(nodes: list[Node], tasks: list[Record], run_state: str) -> None:
    """Each node's state: its task's (the most telling of a loop's iterations), for a group the most telling of
    its steps'; in a run that succeeded, a step that never started was skipped (a condition that was false)."""
    by_name = _by_name(tasks)
    for n in nodes:
        found = _find(by_name, n)
        if found:
            n.state = max((str(t.get("state") or "") for t in found), key=lambda s: _RANK.get(s, 0))
    rank = _RANK
    for n in sorted(nodes, key=lambda n: -n.key.count("/")):
        if n.kind == "task" or n.state:
            continue
        inner = [c.state for c in nodes if c.parent == n.key and c.state]
        if inner:
            worst = max(inner, key=lambda s: rank.get(s, 0))
            done = all(s == "SUCCEEDED" for s in inner) and len(inner) == sum(1 for c in nodes if c.parent == n.key)
            n.state = worst if worst != "SUCCEEDED" or done else "RUNNING"
    if run_state == "SUCCEEDED":
        for n in nodes:
            if not n.state:
                n.state = "SKIPPED"


def _read_log(path: Path, limit: int) -> str:
    """The first ``limit`` bytes of a log file as text, without colour codes ('' when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            return strip_ansi(handle.read(limit).decode("utf-8", "replace"))
    except OSError:
        return ""


def _task_logs(text: str) -> dict[str, list[str]]:
    """A run log cut into each step's parts, one per execution (kfp.local's 'Executing task' ... 'finished with
    status' blocks; a loop's iterations are several blocks of one step)."""
    out: dict[str, list[list[str]]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        start = _TASK_START.search(line)
        if start:
            current = []
            out.setdefault(start.group(1), []).append(current)
        if current is not None:
            current.append(line)
        if _TASK_END.search(line):
            current = None
    return {k: ["\n".join(block)[-LOG_LIMIT:] for block in v] for k, v in out.items()}


def _inputs_from_log(log: str) -> dict[str, Any]:
    """The parameter values a step received, as its executor printed them ('Got executor_input: {...}')."""
    at = log.find("Got executor_input:")
    if at < 0:
        return {}
    lines = []
    depth = 0
    for line in log[at:].splitlines()[1:]:
        lines.append(line)
        depth += line.count("{") - line.count("}")
        if depth <= 0 and lines:
            break
    try:
        data = json.loads("\n".join(lines))
    except ValueError:
        return {}
    values = (data.get("inputs") or {}).get("parameterValues") if isinstance(data, dict) else None
    return values if isinstance(values, dict) else {}
