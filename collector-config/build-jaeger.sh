#!/usr/bin/env bash
# Build Jaeger v2 (one binary: collector + query + in-memory storage) from Go modules, into a cache.
#
#   collector-config/build-jaeger.sh        # prints the binary path on its last line
#
# Jaeger v2 cannot be installed with `go install …@v2.x` (its module path has no /v2), and `go install
# github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0` refuses because the module's go.mod has a replace directive.
# So the module is downloaded through the Go module proxy (`go mod download`) and built as the main module from a
# writable copy of the module cache's files: the same source `go install` would have used. Tag v1.76.0 of the module
# is the Jaeger v2 line (the binary reports "Jaeger backend v2").
set -euo pipefail
version="${JAEGER_VERSION:-v1.76.0}"
cache="${TENANTWATCH_CACHE:-$HOME/.cache/tenantwatch}"
out="$cache/jaeger/$version"
binary="$out/jaeger"
if [ -x "$binary" ]; then
  echo "jaeger: cached build $version" >&2
  echo "$binary"
  exit 0
fi
start=$(date +%s)
mkdir -p "$out"
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
echo "jaeger: downloading github.com/jaegertracing/jaeger@$version" >&2
dir="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/jaegertracing/jaeger@$version" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["Error"]) if d.get("Error") else print(d["Dir"])')"
cp -r "$dir" "$work/src"
chmod -R u+w "$work/src"
echo "jaeger: building (a few minutes the first time)" >&2
if ! (cd "$work/src" && go build -o "$binary.tmp" ./cmd/jaeger >"$work/build.log" 2>&1); then
  tail -n 40 "$work/build.log" >&2
  echo "jaeger: build failed" >&2
  exit 1
fi
mv "$binary.tmp" "$binary"
echo "jaeger: built in $(( $(date +%s) - start )) s" >&2
echo "$binary"
