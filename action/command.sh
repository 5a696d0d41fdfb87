#!/usr/bin/env bash
# `command.sh check` validates the command and revision inputs; `command.sh run` runs that one command.
# The other inputs reach policyship as POLICYSHIP_* settings in the environment.
set -euo pipefail

fail() { echo "::error title=policyship::$*"; exit 2; }

command=${POLICYSHIP_ACTION_COMMAND:-}
revision=${POLICYSHIP_ACTION_REVISION:-}
case "$command" in
  release | check | test | build | list)
    [ -z "$revision" ] || fail "the $command command takes no revision input"
    ;;
  config) ;;
  rollback | verify)
    [ -n "$revision" ] || fail "$command needs the revision input: the SHA to $command"
    ;;
  *) fail "command must be one of release, check, test, build, config, verify, rollback, list, not '$command'" ;;
esac
[ "${1:-}" = run ] || exit 0

unset POLICYSHIP_ACTION_COMMAND POLICYSHIP_ACTION_REVISION
case "$command" in
  # config pins HEAD unless told otherwise; its revision is a setting, not an argument.
  config) [ -z "$revision" ] || export POLICYSHIP_REVISION="$revision" ;;
  # `--` so that a revision can never be read as an option.
  rollback | verify) exec policyship "$command" -- "$revision" ;;
esac
exec policyship "$command"
