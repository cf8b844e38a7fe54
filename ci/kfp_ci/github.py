"""GitHub Actions integration: workflow commands, step outputs, job summaries.

All of it is a no-op outside GitHub Actions (``GITHUB_ACTIONS != "true"``) except where a function says
otherwise. Values written here pass through the secret redactor first.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kfp_ci._secrets import redact, register

__all__ = [
    "CommentOutcome",
    "annotation",
    "append_summary",
    "enabled",
    "group",
    "set_outputs",
    "upsert_pr_comment",
]


def enabled() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def annotation(
    level: str,
    message: str,
    *,
    file: str | Path | None = None,
    line: int | None = None,
    title: str | None = None,
    force: bool = False,
) -> str:
    """Format (and, under GitHub Actions or with ``force``, print) an ``::error``/``::warning``/``::notice``.

    Returns the command line, so ``--format github`` can print it anywhere.
    """
    if level not in ("error", "warning", "notice"):
        raise ValueError(f"unknown annotation level {level!r}")
    props = []
    if file is not None:
        props.append(f"file={_escape_property(str(file))}")
    if line is not None:
        props.append(f"line={int(line)}")
    if title:
        props.append(f"title={_escape_property(title)}")
    command = f"::{level}{' ' + ','.join(props) if props else ''}::{_escape_data(redact(message))}"
    if force or enabled():
        sys.stdout.write(command + "\n")
        sys.stdout.flush()
    return command


@contextmanager
def group(title: str, *, force: bool = False) -> Iterator[None]:
    """Fold the output printed inside the block under ``title`` in the GitHub log."""
    active = force or enabled()
    if active:
        sys.stdout.write(f"::group::{redact(title)}\n")
        sys.stdout.flush()
    try:
        yield
    finally:
        if active:
            sys.stdout.write("::endgroup::\n")
            sys.stdout.flush()


def set_outputs(outputs: Mapping[str, str | None]) -> bool:
    """Append step outputs to ``$GITHUB_OUTPUT`` (multi-line values use a random delimiter).

    ``None`` values are written as empty strings, so every declared output is set. Returns whether a file
    was written.
    """
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as fh:
        for key, value in outputs.items():
            text = redact("" if value is None else str(value))
            if "\n" in text:
                delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
                fh.write(f"{key}<<{delimiter}\n{text}\n{delimiter}\n")
            else:
                fh.write(f"{key}={text}\n")
    return True


def append_summary(markdown: str) -> bool:
    """Append Markdown to ``$GITHUB_STEP_SUMMARY``. Returns whether a file was written."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(redact(markdown).rstrip("\n") + "\n\n")
    return True


# ------------------------------------------------------------------------------------- PR comments
@dataclass(frozen=True, slots=True)
class CommentOutcome:
    """What :func:`upsert_pr_comment` did: ``created``, ``updated`` or ``skipped`` (``reason`` says why)."""

    action: str
    url: str = ""
    reason: str = ""


def _pull_request_number(env: Mapping[str, str]) -> int | None:
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    number = (event.get("pull_request") or {}).get("number") or (
        (event.get("issue") or {}).get("number") if (event.get("issue") or {}).get("pull_request") else None)
    return int(number) if isinstance(number, int) else None


def upsert_pr_comment(body: str, *, marker: str, env: Mapping[str, str] | None = None,
                      timeout: float = 30.0) -> CommentOutcome:
    """Create, or edit in place, the one pull-request comment that holds ``marker`` (a hidden HTML comment).

    GitHub's REST API at ``$GITHUB_API_URL`` (default ``https://api.github.com``): list the PR's comments
    (``GET /repos/{repo}/issues/{n}/comments``, every page), ``PATCH /repos/{repo}/issues/comments/{id}`` the one
    whose body holds the marker, else ``POST`` a new one. The token comes from ``$GITHUB_TOKEN`` only (never
    argv) and needs ``pull-requests: write``. Without a token, a repository or a pull request, nothing is sent
    and the outcome is ``skipped``; an HTTP error (e.g. a fork's read-only token) is ``skipped`` too, with the
    status in ``reason``: the plan still reaches the job summary.
    """
    env = os.environ if env is None else env
    token = env.get("GITHUB_TOKEN") or ""
    repository = env.get("GITHUB_REPOSITORY") or ""
    number = _pull_request_number(env)
    if not token:
        return CommentOutcome("skipped", reason="no GITHUB_TOKEN (pass the job's token with pull-requests: write)")
    if not repository or number is None:
        return CommentOutcome("skipped", reason="not a pull_request event (no pull request number)")
    register(token, github_mask=False)  # GitHub masks its own job token already
    import httpx

    api = (env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "kfp-ci"}
    text = redact(body)
    if marker not in text:
        text = f"{marker}\n{text}"
    try:
        with httpx.Client(base_url=api, headers=headers, timeout=timeout) as http:
            found = None
            url: str | None = f"/repos/{repository}/issues/{number}/comments?per_page=100"
            while url and found is None:
                page = http.get(url)
                page.raise_for_status()
                found = next((c for c in page.json() if marker in (c.get("body") or "")), None)
                url = page.links.get("next", {}).get("url")
            if found is not None:
                done = http.patch(f"/repos/{repository}/issues/comments/{found['id']}", json={"body": text})
                done.raise_for_status()
                return CommentOutcome("updated", url=str(done.json().get("html_url") or ""))
            done = http.post(f"/repos/{repository}/issues/{number}/comments", json={"body": text})
            done.raise_for_status()
            return CommentOutcome("created", url=str(done.json().get("html_url") or ""))
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        hint = " (the token may be read-only: a fork's pull request, or no pull-requests: write)" \
            if status in (401, 403, 404) else ""
        return CommentOutcome("skipped", reason=f"GitHub answered {status}{hint}")
    except httpx.HTTPError as exc:
        return CommentOutcome("skipped", reason=redact(f"cannot reach {api}: {type(exc).__name__}"))
