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
# Progress goes to stderr, one line per step with its duration (collector-config/progress.sh); stdout is the path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
progress_name=jaeger
# shellcheck source=progress.sh
. "$here/progress.sh"
version="${JAEGER_VERSION:-v1.76.0}"
cache="${TENANTWATCH_CACHE:-$HOME/.cache/tenantwatch}"
out="$cache/jaeger/$version"
binary="$out/jaeger"
if [ -x "$binary" ]; then
  say "cached build $version: $binary"
  echo "$binary"
  exit 0
fi
start=$SECONDS
mkdir -p "$out"
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
say "no cached build of $version; a cold build takes about 5 minutes on 2 cores and fills Go's caches" \
  "(~/go/pkg/mod and ~/.cache/go-build)"

download() {
  (cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/jaegertracing/jaeger@$version" \
    >"$work/module.json" 2>"$work/download.log")
}
if ! step "go mod download github.com/jaegertracing/jaeger@$version" download; then
  cat "$work/module.json" "$work/download.log" >&2
  exit 1
fi
dir="$(python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["Error"]) if d.get("Error") else print(d["Dir"])' \
  <"$work/module.json")"
cp -r "$dir" "$work/src"
chmod -R u+w "$work/src"
compile() {
  (cd "$work/src" && go build -o "$binary.tmp" ./cmd/jaeger >"$work/build.log" 2>&1)
}
if ! step "go build ./cmd/jaeger" compile; then
  tail -n 40 "$work/build.log" >&2
  say "build failed (the last 40 lines of its log are above)"
  exit 1
fi
mv "$binary.tmp" "$binary"
say "built in $((SECONDS - start)) s: $binary"
echo "$binary"
