"""Helpers the act tests share (a uniquely named module, so tests never import ``conftest``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

PIPELINE_SOURCE = '''
from kfp import dsl


@dsl.component(base_image="python:3.11-slim")
def make_rows(rows: int) -> int:
    return rows * 2


@dsl.component(base_image="python:3.11-slim")
def report(total: int) -> str:
    return f"total={total}"


@dsl.pipeline(name="hello-ci")
def hello_pipeline(rows: int = 3):
    first = make_rows(rows=rows)
    report(total=first.output)
'''



def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com",
                        "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com"})


def compile_pipeline(source: Path, output: Path) -> None:
    """Compile with the real kfp compiler in a subprocess (the module is a fresh import each time)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    code = ("import importlib.util,sys; s=importlib.util.spec_from_file_location('p', sys.argv[1]); "
            "m=importlib.util.module_from_spec(s); s.loader.exec_module(m); "
            "from kfp import compiler; compiler.Compiler().compile(m.hello_pipeline, sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(source), str(output)], check=True, capture_output=True)


def _write_stub(directory: Path, action_yml: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "action.yml").write_text(textwrap.dedent(action_yml).lstrip(), encoding="utf-8")
    return directory


CACHE_COMMON = r"""
const fs = require('fs'), path = require('path'), cp = require('child_process');
const input = (name) => (process.env['INPUT_' + name.toUpperCase()] || '').trim();
const store = process.env.KFP_CI_TEST_CACHE_STORE;
const entry = () => path.join(store, input('key'));
function output(name, value) { fs.appendFileSync(process.env.GITHUB_OUTPUT, `${name}=${value}\n`); }
exports.restore = function () {
  if (!store) { console.log('stub cache miss'); output('cache-hit', 'false'); return; }
  if (fs.existsSync(entry())) {
    fs.mkdirSync(input('path'), { recursive: true });
    cp.execFileSync('cp', ['-a', entry() + '/.', input('path') + '/']);
    console.log('stub cache hit: ' + input('key')); output('cache-hit', 'true');
  } else { console.log('stub cache miss: ' + input('key')); output('cache-hit', 'false'); }
};
exports.save = function () {
  if (!store || fs.existsSync(entry()) || !fs.existsSync(input('path'))) return;
  fs.mkdirSync(store, { recursive: true });
  cp.execFileSync('cp', ['-a', input('path'), entry()]);
  console.log('stub cache saved: ' + input('key'));
};
"""


@dataclass
class Stubs:
    checkout: Path
    setup_python: Path
    cache: Path


def write_stubs(base: Path) -> Stubs:
    """Local stand-ins, under ``base``, for the three remote actions the workflows use."""
    checkout = _write_stub(base / "checkout", """
        name: checkout stand-in
        description: Copies the consumer repository, or links this kfp-ci checkout for another repository.
        inputs:
          repository: {description: repo, default: ""}
          ref: {description: ref, default: ""}
          path: {description: path, default: ""}
          fetch-depth: {description: depth, default: "1"}
          persist-credentials: {description: creds, default: "true"}
        runs:
          using: composite
          steps:
            - shell: bash
              env:
                STUB_REPOSITORY: ${{ inputs.repository }}
                STUB_PATH: ${{ inputs.path }}
                STUB_CREDS: ${{ inputs.persist-credentials }}
              run: |
                set -eu
                [ "$STUB_CREDS" = "false" ] || { echo "checkout must not persist credentials" >&2; exit 1; }
                dest="$GITHUB_WORKSPACE/$STUB_PATH"
                if [ -z "$STUB_REPOSITORY" ] || [ "$STUB_REPOSITORY" = "$GITHUB_REPOSITORY" ]; then
                  mkdir -p "$dest"
                  cp -a "$KFP_CI_TEST_CONSUMER/." "$dest/"
                  echo "stub checkout: consumer repository"
                else
                  rm -rf "$dest"
                  ln -s "$KFP_CI_TEST_KFP_CI" "$dest"
                  echo "stub checkout: $STUB_REPOSITORY -> $dest"
                fi
        """)
    setup_python = _write_stub(base / "setup-python", """
        name: setup-python stand-in
        description: Reports the host's python3.
        inputs:
          python-version: {description: version, default: ""}
          update-environment: {description: update, default: "true"}
        outputs:
          python-path:
            description: interpreter
            value: ${{ steps.py.outputs.python-path }}
        runs:
          using: composite
          steps:
            - id: py
              shell: bash
              run: echo "python-path=$(command -v python3)" >> "$GITHUB_OUTPUT"
        """)
    cache = _write_stub(base / "cache", """
        name: cache stand-in
        description: >-
          Never hits, unless KFP_CI_TEST_CACHE_STORE is set; then it restores STORE/KEY into the path and its post
          step saves the path there, as actions/cache does (node, run on the host by act).
        inputs:
          path: {description: path, default: ""}
          key: {description: key, default: ""}
        outputs:
          cache-hit:
            description: hit
        runs:
          using: node20
          main: main.js
          post: post.js
        """)
    (cache / "common.js").write_text(CACHE_COMMON, encoding="utf-8")
    (cache / "main.js").write_text("require('./common.js').restore();\n", encoding="utf-8")
    (cache / "post.js").write_text("require('./common.js').save();\n", encoding="utf-8")
    return Stubs(checkout, setup_python, cache)
