#!/usr/bin/env bash
# Run ONE kfp-ci command built from the action's inputs, which arrive as environment variables only
# (KFP_CI_IN_*; secrets as KFP_CI_PASSWORD / KFP_CI_TOKEN / KFP_CI_COOKIE, read by kfp-ci itself).
# Usage: kfp-ci.sh compile|deploy|run
set -euo pipefail

command="${1:?usage: kfp-ci.sh compile|deploy|run}"
bin="${KFP_CI_BIN:?KFP_CI_BIN is not set (the install step failed?)}"

is_true() {
  case "${1,,}" in
    true | yes | 1 | on) return 0 ;;
    false | no | 0 | off | "") return 1 ;;
    *)
      echo "::error title=kfp-ci action::'$1' is not a boolean (use true or false)" >&2
      exit 2
      ;;
  esac
}

args=("$command")
# Words of a whitespace-separated input (paths, pipelines), no globbing.
words() {
  local -a items
  read -r -d '' -a items <<<"$1" || true
  printf '%s\n' "${items[@]}"
}
# Non-empty lines of a multi-line input (KEY=VALUE params, requirements), trimmed.
lines() {
  local line
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line#"${line%%[![:space:]]*}"}"
    line="${line%"${line##*[![:space:]]}"}"
    [ -z "$line" ] || printf '%s\n' "$line"
  done <<<"$1"
}
flag() { if is_true "${2:-}"; then args+=("$1"); fi; }
opt() { if [ -n "${2:-}" ]; then args+=("$1" "$2"); fi; }
repeat() {
  local item
  while IFS= read -r item; do [ -z "$item" ] || args+=("$1" "$item"); done < <(lines "${2:-}")
}
positional() {
  local item
  while IFS= read -r item; do [ -z "$item" ] || args+=("$item"); done < <(words "${1:-}")
}

case "$command" in
  compile)
    flag --check "${KFP_CI_IN_CHECK:-}"
    opt --function "${KFP_CI_IN_FUNCTION:-}"
    opt --out-dir "${KFP_CI_IN_OUT_DIR:-}"
    opt --layout "${KFP_CI_IN_LAYOUT:-}"
    flag --ignore-sdk-version "${KFP_CI_IN_IGNORE_SDK_VERSION:-}"
    opt --pipeline-parameters "${KFP_CI_IN_PIPELINE_PARAMETERS:-}"
    opt --format "${KFP_CI_IN_FORMAT:-}"
    flag --no-cache "${KFP_CI_IN_NO_CACHE:-}"
    positional "${KFP_CI_IN_PATHS:-}"
    ;;
  deploy)
    opt --experiment "${KFP_CI_IN_EXPERIMENT:-}"
    opt --version-name "${KFP_CI_IN_VERSION_NAME:-}"
    repeat --param "${KFP_CI_IN_PARAMS:-}"
    flag --run "${KFP_CI_IN_RUN:-}"
    if is_true "${KFP_CI_IN_RUN:-}"; then
      # wait, timeout and run-always only mean something with a run (wait defaults to true).
      flag --run-always "${KFP_CI_IN_RUN_ALWAYS:-}"
      flag --wait "${KFP_CI_IN_WAIT:-}"
      if is_true "${KFP_CI_IN_WAIT:-}"; then
        opt --timeout "${KFP_CI_IN_TIMEOUT:-}"
        flag --terminate-on-timeout "${KFP_CI_IN_TERMINATE_ON_TIMEOUT:-}"
      fi
    fi
    opt --compile "${KFP_CI_IN_COMPILE:-}"
    opt --schedule "${KFP_CI_IN_SCHEDULE:-}"
    opt --every "${KFP_CI_IN_EVERY:-}"
    flag --latest "${KFP_CI_IN_LATEST:-}"
    flag --keep-old "${KFP_CI_IN_KEEP_OLD:-}"
    repeat --require "${KFP_CI_IN_REQUIRE:-}"
    opt --baseline "${KFP_CI_IN_BASELINE:-}"
    flag --dry-run "${KFP_CI_IN_DRY_RUN:-}"
    positional "${KFP_CI_IN_PIPELINES:-}"
    ;;
  run)
    args+=("${KFP_CI_IN_PIPELINE:?the pipeline input is required}")
    opt --version "${KFP_CI_IN_VERSION:-}"
    opt --experiment "${KFP_CI_IN_EXPERIMENT:-}"
    opt --run-name "${KFP_CI_IN_RUN_NAME:-}"
    repeat --param "${KFP_CI_IN_PARAMS:-}"
    flag --wait "${KFP_CI_IN_WAIT:-}"
    opt --timeout "${KFP_CI_IN_TIMEOUT:-}"
    flag --terminate-on-timeout "${KFP_CI_IN_TERMINATE_ON_TIMEOUT:-}"
    ;;
  *)
    echo "::error title=kfp-ci action::unknown command '$command'" >&2
    exit 2
    ;;
esac

global=()
if [ -n "${KFP_CI_IN_CONFIG:-}" ]; then global+=(--config "$KFP_CI_IN_CONFIG"); fi
if is_true "${KFP_CI_IN_VERBOSE:-}"; then global+=(--verbose); fi
if [ -n "${KFP_CI_IN_WORKING_DIRECTORY:-}" ]; then cd "$KFP_CI_IN_WORKING_DIRECTORY"; fi

echo "kfp-ci ${global[*]} ${args[*]}"
exec "$bin" "${global[@]}" "${args[@]}"
