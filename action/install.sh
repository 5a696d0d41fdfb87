#!/usr/bin/env bash
# Puts the pinned opa on PATH and installs the exact policyship version, without install scripts.
# Never `npx --yes`: what runs is the version this step names, not whatever the registry holds newest.
set -euo pipefail

fail() { echo "::error title=policyship::$*"; exit 2; }

opa="$OPA_DIR/opa"
[ -x "$opa" ] || fail "opa $OPA_VERSION is not at $opa"
found=$("$opa" version | sed -n 's/^Version: //p')
[ "$found" = "$OPA_VERSION" ] || fail "the cached opa at $opa is version '$found', not $OPA_VERSION"
echo "$OPA_DIR" >>"$GITHUB_PATH"

version=${POLICYSHIP_VERSION:-}
if [ -z "$version" ]; then
  version=$(node -p 'require(process.argv[1]).version' "$GITHUB_ACTION_PATH/package.json")
fi
if [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  spec="policyship@$version"
elif [[ "$version" == *.tgz && -f "$version" ]]; then
  spec=$(cd "$(dirname "$version")" && pwd)/$(basename "$version") # a packed tarball, e.g. a fork's build
else
  fail "policyship-version must be an exact version such as 0.1.0 (or a packed .tgz), not '$version'"
fi

prefix="${RUNNER_TEMP:?}/policyship-action"
rm -rf "$prefix" && mkdir -p "$prefix"
printf '{ "name": "policyship-action", "private": true }\n' >"$prefix/package.json"
npm install --prefix "$prefix" --ignore-scripts --no-audit --no-fund --loglevel=error --save-exact "$spec" >&2 ||
  fail "could not install $spec"
echo "$prefix/node_modules/.bin" >>"$GITHUB_PATH"
echo "policyship $("$prefix/node_modules/.bin/policyship" --version) and opa $OPA_VERSION are ready" >&2
