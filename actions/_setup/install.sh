#!/usr/bin/env bash
# Install kfp-ci from the action's own checkout into a private venv and print its path as the step output
# `bin` (the kfp-ci executable) and `python` (the venv's interpreter). Nothing is added to the caller's PATH or environment.
#
# Environment (set by the composite actions):
#   KFP_CI_ACTION_ROOT    the action's checkout (holds pyproject.toml and ci/)
#   KFP_CI_ACTION_PYTHON  interpreter to build the venv with (setup-python's python-path; default python3)
#   KFP_CI_ACTION_VENV_DIR  where the venv lives (restored by actions/cache when the lock hash matches)
#   KFP_CI_ACTION_EXTRAS  extras to install, e.g. "compile" (empty: core only)
#   KFP_CI_ACTION_VENV    optional: an existing venv that already has this kfp-ci (self-hosted runners, tests);
#                         used as is after a version check, nothing is installed.
set -euo pipefail

out() { printf '%s=%s\n' "$1" "$2" >>"${GITHUB_OUTPUT:-/dev/null}"; }

root="${KFP_CI_ACTION_ROOT:?KFP_CI_ACTION_ROOT is not set}"
if [ -n "${KFP_CI_ACTION_VENV:-}" ]; then
  bin="${KFP_CI_ACTION_VENV}/bin/kfp-ci"
  if ! "$bin" --version >/dev/null 2>&1; then
    echo "::error title=kfp-ci action::KFP_CI_ACTION_VENV=${KFP_CI_ACTION_VENV} has no working kfp-ci" >&2
    exit 2
  fi
  echo "Using the existing venv ${KFP_CI_ACTION_VENV} ($("$bin" --version))"
  out bin "$bin"
  out python "${KFP_CI_ACTION_VENV}/bin/python"
  exit 0
fi

venv="${KFP_CI_ACTION_VENV_DIR:?KFP_CI_ACTION_VENV_DIR is not set}"
python="${KFP_CI_ACTION_PYTHON:-}"
[ -n "$python" ] || python="$(command -v python3)"
bin="${venv}/bin/kfp-ci"
if "$bin" --version >/dev/null 2>&1; then
  echo "Reusing the cached venv ${venv} ($("$bin" --version))"
else
  echo "::group::Install kfp-ci into ${venv}"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  spec="$root"
  if [ -n "${KFP_CI_ACTION_EXTRAS:-}" ]; then
    spec="${root}[${KFP_CI_ACTION_EXTRAS}]"
  fi
  "${venv}/bin/python" -m pip install --disable-pip-version-check --no-input --quiet "$spec"
  "$bin" --version
  echo "::endgroup::"
fi
out bin "$bin"
out python "${venv}/bin/python"
