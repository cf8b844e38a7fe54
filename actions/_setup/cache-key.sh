#!/usr/bin/env bash
# Step outputs `venv` (where the private venv lives) and `key` (the cache key): a hash of the action's
# package metadata and sources, the interpreter and the extras, so a new kfp-ci or Python never reuses a venv.
set -euo pipefail

root="${KFP_CI_ACTION_ROOT:?KFP_CI_ACTION_ROOT is not set}"
python="${KFP_CI_ACTION_PYTHON:-}"
[ -n "$python" ] || python="$(command -v python3)"
extras="${KFP_CI_ACTION_EXTRAS:-}"
pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
lock="$(
  cd "$root"
  { sha256sum pyproject.toml; find ci -type f -name '*.py' -print0 | sort -z | xargs -0 sha256sum; } | sha256sum
)"
lock="${lock%% *}"
venv="${RUNNER_TEMP:-/tmp}/kfp-ci-action/venv-py${pyver}${extras:+-}${extras//,/-}"
{
  printf 'venv=%s\n' "$venv"
  printf 'key=kfp-ci-action-%s-py%s-%s-%s\n' "${RUNNER_OS:-Linux}" "$pyver" "${extras:-core}" "${lock:0:32}"
} >>"${GITHUB_OUTPUT:-/dev/null}"
