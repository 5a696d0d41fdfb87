#!/usr/bin/env bash
# Checks every input before anything is downloaded or installed, and says where the pinned opa lives.
# Writes dir, asset and cache-key to $GITHUB_OUTPUT.
set -euo pipefail

fail() { echo "::error title=policyship::$*"; exit 2; }

[[ "$OPA_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
  fail "opa-version must be an exact release such as 1.22.2, not '$OPA_VERSION'"
if [ -n "${POLICYSHIP_VERSION:-}" ] && ! [[ "$POLICYSHIP_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] &&
  ! [[ "$POLICYSHIP_VERSION" == *.tgz && -f "$POLICYSHIP_VERSION" ]]; then
  fail "policyship-version must be an exact version such as 0.1.0 (or a packed .tgz), not '$POLICYSHIP_VERSION'"
fi
"$GITHUB_ACTION_PATH/action/command.sh" check

case "$RUNNER_OS_NAME/$RUNNER_ARCH_NAME" in
  Linux/X64) asset=opa_linux_amd64_static ;;
  Linux/ARM64) asset=opa_linux_arm64_static ;;
  macOS/ARM64) asset=opa_darwin_arm64_static ;;
  macOS/X64) asset=opa_darwin_amd64 ;;
  *) fail "no opa release for $RUNNER_OS_NAME/$RUNNER_ARCH_NAME; run the action on Linux or macOS" ;;
esac

root=${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:?}}
{
  echo "dir=$root/policyship-opa/$OPA_VERSION/$asset"
  echo "asset=$asset"
  echo "cache-key=policyship-opa-$OPA_VERSION-$asset"
} >>"$GITHUB_OUTPUT"
