#!/usr/bin/env bash
# Downloads the pinned opa release asset into OPA_DIR, checked against the sha256 published beside it.
# POLICYSHIP_OPA_RELEASES points at a mirror of OPA's GitHub releases (GitHub Enterprise, air-gapped runners).
set -euo pipefail

fail() { echo "::error title=policyship::$*"; exit 2; }

releases=${POLICYSHIP_OPA_RELEASES:-https://github.com/open-policy-agent/opa/releases/download}
url="$releases/v$OPA_VERSION/$OPA_ASSET"
mkdir -p "$OPA_DIR"
partial="$OPA_DIR/opa.partial"
trap 'rm -f "$partial" "$partial.sha256"' EXIT

curl --fail --silent --show-error --location --retry 3 --proto '=https,http' -o "$partial" "$url" ||
  fail "could not download opa $OPA_VERSION from $url"
curl --fail --silent --show-error --location --retry 3 --proto '=https,http' -o "$partial.sha256" "$url.sha256" ||
  fail "could not download the checksum of opa $OPA_VERSION from $url.sha256"

expected=$(cut -d' ' -f1 <"$partial.sha256")
actual=$( (sha256sum "$partial" 2>/dev/null || shasum -a 256 "$partial") | cut -d' ' -f1)
[[ "$expected" =~ ^[0-9a-f]{64}$ ]] || fail "the checksum file at $url.sha256 holds no sha256"
[ "$expected" = "$actual" ] || fail "opa $OPA_VERSION from $url has sha256 $actual, but its release says $expected"

chmod 0755 "$partial"
mv "$partial" "$OPA_DIR/opa"
