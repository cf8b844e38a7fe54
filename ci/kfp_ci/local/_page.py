"""The read-only HTML page at ``/``: pipelines, versions, runs (state, duration) and recurring runs."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from kfp_ci.local._fields import ts

if TYPE_CHECKING:
    from kfp_ci.local._model import Model

_STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin-bottom:2rem}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}th{background:#f3f3f3}
.SUCCEEDED{color:#17702a}.FAILED{color:#b00020}.RUNNING,.PENDING{color:#8a5a00}.CANCELED{color:#666}"""


def _table(table_id: str, headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p id="{table_id}-empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_page(model: Model) -> str:
    store = model.store
    pipelines = store.list("pipeline")
    names = {p["id"]: p["name"] for p in pipelines}
    versions = store.list("version")
    vnames = {v["id"]: v["name"] for v in versions}
    p_rows = [[escape(p["name"]), escape(p.get("_ns") or "-"), str(sum(v["pipeline_id"] == p["id"] for v in versions)),
               escape(ts(p["created_at"]) or "")] for p in reversed(pipelines)]
    v_rows = [[escape(names.get(v["pipeline_id"], "?")), escape(v["name"]), escape(ts(v["created_at"]) or "")]
              for v in reversed(versions)]
    r_rows = []
    for r in reversed(store.list("run")[-200:]):
        state = str(r.get("state", ""))
        end = r.get("finished_at")
        duration = f"{end - r['created_at']:.1f} s" if end else "-"
        r_rows.append([escape(r["name"]), escape(names.get(r.get("pipeline_id", ""), "(inline)")),
                       escape(vnames.get(r.get("version_id", ""), "-")),
                       f'<span class="{escape(state)}">{escape(state)}</span>', duration,
                       escape(ts(r["created_at"]) or ""), escape(r.get("error") or "")])
    rr_rows = []
    for rec in reversed(store.list("recurring")):
        trig = rec["trigger"]
        when = f"cron {trig['cron']}" if trig.get("cron") else f"every {trig.get('interval')} s"
        target = vnames.get(rec.get("version_id", ""), "latest version") if rec.get("pipeline_id") else "(inline)"
        rr_rows.append([escape(rec["name"]), escape(names.get(rec.get("pipeline_id", ""), "-")), escape(target),
                        escape(when), "enabled" if rec.get("enabled") else "disabled"])
    sections = [
        "<h2>Pipelines</h2>", _table("pipelines", ["Name", "Namespace", "Versions", "Created"], p_rows,
                                     "No pipelines yet."),
        "<h2>Versions</h2>", _table("versions", ["Pipeline", "Version", "Created"], v_rows, "No versions yet."),
        "<h2>Runs</h2>", _table("runs", ["Run", "Pipeline", "Version", "State", "Duration", "Created", "Error"],
                                r_rows, "No runs yet."),
        "<h2>Recurring runs</h2>", _table("recurring-runs", ["Name", "Pipeline", "Version", "Trigger", "Status"],
                                          rr_rows, "No recurring runs yet."),
    ]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>kfp-ci local KFP</title>"
            f"<style>{_STYLE}</style></head><body><h1>kfp-ci local KFP ({escape(model.compat.tag)})</h1>"
            "<p>Read-only view of what CI deployed and ran. The API is under /apis and /pipeline/apis.</p>"
            + "".join(sections) + "</body></html>")
