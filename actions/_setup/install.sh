#!/usr/bin/env bash
# Install kfp-ci from the action's own checkout into a private venv and print its path as the step output
# `bin` (the kfp-ci executable) and `python` (the venv's interpreter). Nothing is added to the caller's PATH or environment.
#
# Environment (set by the composite actions):
#   KFP_CI_ACTION_ROOT    the action's checkout (holds pyproject.toml and ci/)
#   KFP_CI_ACTION_PYTHON  interpreter to build the venv with (setup-python's python-path; default python3)
#   KFP_CI_ACTION_VENV_DIR  where the venv lives (restored by actions/cache when the lock hash matches)
#   KFP_CI_ACTION_EXTRAS  extras to install, e.g. "compile" (empty: core only)
#   With "compile", the user's environment for importing the pipeline modules, in the same pip call (one resolve):
#   KFP_CI_ACTION_KFP_VERSION   kfp pin: a version (2.14.6, 2.14.*) or a specifier (>=2.14,<2.15)
#   KFP_CI_ACTION_REQUIREMENTS  requirements files (pip -r), separated by spaces or newlines
#   KFP_CI_ACTION_PIP_INSTALL   more pip install arguments, e.g. "-e ." or "pandas==2.2.3"
#   KFP_CI_ACTION_WORKDIR       where those paths are relative to (the working-directory input)
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
  spec="$(cd "$root" && pwd -P)"
  if [ -n "${KFP_CI_ACTION_EXTRAS:-}" ]; then
    spec="${spec}[${KFP_CI_ACTION_EXTRAS}]"
  fi
  pip_args=("$spec")
  if [[ ",${KFP_CI_ACTION_EXTRAS:-}," == *,compile,* ]]; then
    kfp="${KFP_CI_ACTION_KFP_VERSION:-}"
    kfp="${kfp//[[:space:]]/}"
    if [ -n "$kfp" ]; then
      case "$kfp" in
        [0-9]*) pip_args+=("kfp==${kfp}") ;;
        *) pip_args+=("kfp${kfp}") ;;
      esac
    fi
    read -r -d '' -a files <<<"${KFP_CI_ACTION_REQUIREMENTS:-}" || true
    for file in "${files[@]}"; do pip_args+=(-r "$file"); done
    read -r -d '' -a more <<<"${KFP_CI_ACTION_PIP_INSTALL:-}" || true
    pip_args+=("${more[@]}")
  fi
  echo "pip install ${pip_args[*]}"
  (
    cd "${KFP_CI_ACTION_WORKDIR:-.}"
    "${venv}/bin/python" -m pip install --disable-pip-version-check --no-input --quiet "${pip_args[@]}"
  )
  if [[ ",${KFP_CI_ACTION_EXTRAS:-}," == *,compile,* ]]; then
    "${venv}/bin/python" -c 'import kfp; print("kfp", kfp.__version__)'
  fi
  "$bin" --version
  echo "::endgroup::"
fi
out bin "$bin"
out python "${venv}/bin/python"
