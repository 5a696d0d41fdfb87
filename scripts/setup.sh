#!/usr/bin/env bash
# Idempotent setup: Node >= 22, npm ci, pinned opa and minio, dist/.
# Built binaries are cached outside the clone ($POLICYSHIP_CACHE) so that a
# fresh clone on the same machine links them instead of rebuilding.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

OPA_VERSION=${OPA_VERSION:-v1.22.2}
# MinIO no longer tags Go module versions; this pseudo-version is the 2026-02-12 commit on master.
MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
ACTIONLINT_VERSION=${ACTIONLINT_VERSION:-v1.7.12}
# CNCF Distribution's registry: the OCI registry the tests and `make demo STORE=oci` start on loopback.
REGISTRY_VERSION=${REGISTRY_VERSION:-v3.0.0}
# The AWS CLI from PyPI: the baseline `aws s3 cp` of the benchmarks (make bench).
AWSCLI_VERSION=${AWSCLI_VERSION:-1.46.3}
NODE_MAJOR=${NODE_MAJOR:-24}
cache=${POLICYSHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/policyship}
tools="$root/.tools"

log() { printf 'setup: %s\n' "$*" >&2; }

mkdir -p "$tools/bin" "$cache"

# 1. Node. The machine's node may be older than the project's floor (22).
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ ! -x "$tools/bin/node" ]; then
  if command -v node >/dev/null && [ "$(node_major node)" -ge 22 ]; then
    log "node $(node --version) on PATH is recent enough"
  else
    node_cache="$cache/node-$NODE_MAJOR"
    if [ ! -x "$node_cache/node_modules/node/bin/node" ]; then
      log "installing node@$NODE_MAJOR from the npm registry into $node_cache"
      rm -rf "$node_cache.tmp" && mkdir -p "$node_cache.tmp"
      npm install --silent --no-save --no-package-lock --prefix "$node_cache.tmp" "node@$NODE_MAJOR"
      rm -rf "$node_cache" && mv "$node_cache.tmp" "$node_cache"
    fi
    ln -sf "$node_cache/node_modules/node/bin/node" "$tools/bin/node"
    log "node $("$tools/bin/node" --version) linked into .tools/bin"
  fi
fi
export PATH="$tools/bin:$PATH"

# 2. Dependencies, only when the lockfile changed since the last install.
stamp="node_modules/.policyship-lock-sha256"
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" >"$stamp"
fi

# 3. Go-built tools, each cached per version.
go_tool() { # name module version [ldflags]
  local name=$1 module=$2 version=$3 ldflags=${4:-}
  local dir="$cache/$name-$version"
  if [ ! -x "$dir/$name" ]; then
    command -v go >/dev/null || { log "go is required to build $name (or put $name $version on PATH as .tools/bin/$name)"; exit 2; }
    log "building $name $version with go install (first time on this machine only)"
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    GOBIN="$dir.tmp" GOFLAGS=-buildvcs=false go install -ldflags "$ldflags" "$module@$version"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  ln -sf "$dir/$name" "$tools/bin/$name"
}
go_tool opa github.com/open-policy-agent/opa "$OPA_VERSION"
# go install leaves MinIO's version as DEVELOPMENT.GOGET; stamp the pinned one so --version tells the truth.
minio_commit=${MINIO_VERSION##*-}
go_tool minio github.com/minio/minio "$MINIO_VERSION" \
  "-X github.com/minio/minio/cmd.Version=$MINIO_VERSION -X github.com/minio/minio/cmd.ReleaseTag=$MINIO_VERSION -X github.com/minio/minio/cmd.CommitID=$minio_commit"
go_tool actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION"
go_tool registry github.com/distribution/distribution/v3/cmd/registry "$REGISTRY_VERSION" \
  "-X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION"
printf '%s\n' "$OPA_VERSION" >"$tools/opa-version"

# 4. The AWS CLI, in a virtualenv cached per version.
awscli_dir="$cache/awscli-$AWSCLI_VERSION"
if [ ! -x "$awscli_dir/bin/aws" ]; then
  if command -v python3 >/dev/null; then
    log "installing awscli $AWSCLI_VERSION from PyPI (first time on this machine only)"
    rm -rf "$awscli_dir"
    # Only make bench needs it, so a failed install warns instead of failing make test.
    if ! { python3 -m venv "$awscli_dir" &&
      "$awscli_dir/bin/pip" install --quiet --disable-pip-version-check "awscli==$AWSCLI_VERSION"; }; then
      log "warning: could not install awscli $AWSCLI_VERSION; make bench needs it"
      rm -rf "$awscli_dir"
    fi
  else
    log "python3 not found: skipping the AWS CLI (only make bench needs it)"
  fi
fi
[ -x "$awscli_dir/bin/aws" ] && ln -sf "$awscli_dir/bin/aws" "$tools/bin/aws"

# 5. dist/
log "building dist/"
npm run --silent build
log "ready: node $(node --version), $(opa version | head -1)"
