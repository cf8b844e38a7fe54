#!/usr/bin/env bash
# Step outputs `venv` (where the private venv lives) and `key` (the cache key): a hash of the action's
# package metadata and sources, the interpreter, the extras and, when the pipelines are compiled (extras
# include `compile`), the user's environment: the kfp pin, the requirements files' contents, the extra pip
# arguments and the project's own packaging files. A new kfp-ci, Python, pin or requirement never reuses a venv.
#
# Environment: KFP_CI_ACTION_ROOT, KFP_CI_ACTION_PYTHON, KFP_CI_ACTION_EXTRAS, KFP_CI_ACTION_VENV_ROOT, and (with compile)
# KFP_CI_ACTION_KFP_VERSION, KFP_CI_ACTION_REQUIREMENTS, KFP_CI_ACTION_PIP_INSTALL, KFP_CI_ACTION_WORKDIR.
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
user="none"
if [[ ",${extras}," == *,compile,* ]]; then
  user="$(
    cd "${KFP_CI_ACTION_WORKDIR:-.}"
    printf 'kfp=%s\npip=%s\n' "${KFP_CI_ACTION_KFP_VERSION:-}" "${KFP_CI_ACTION_PIP_INSTALL:-}"
    read -r -d '' -a files <<<"${KFP_CI_ACTION_REQUIREMENTS:-}" || true
    for file in "${files[@]}"; do
      if [ -f "$file" ]; then sha256sum -- "$file"; else printf 'missing %s\n' "$file"; fi
    done
    if [ -n "${KFP_CI_ACTION_PIP_INSTALL:-}" ]; then
      for file in pyproject.toml setup.py setup.cfg; do
        if [ -f "$file" ]; then sha256sum -- "$file"; fi
      done
    fi
  )"
  user="$(printf '%s' "$user" | sha256sum)"
  user="${user:0:16}"
fi
# The venvs live under $RUNNER_TEMP/kfp-ci-action (a fixed path on GitHub-hosted runners, which the cache
# restores to); KFP_CI_ACTION_VENV_ROOT moves them, e.g. to a directory a self-hosted runner keeps between jobs.
venv="${KFP_CI_ACTION_VENV_ROOT:-${RUNNER_TEMP:-/tmp}/kfp-ci-action}/venv-py${pyver}${extras:+-}${extras//,/-}-${user}"
{
  printf 'venv=%s\n' "$venv"
  printf 'key=kfp-ci-action-%s-py%s-%s-%s-%s\n' "${RUNNER_OS:-Linux}" "$pyver" "${extras:-core}" "${lock:0:32}" "$user"
} >>"${GITHUB_OUTPUT:-/dev/null}"
