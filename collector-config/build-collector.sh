#!/usr/bin/env bash
# Build the tenantwatch collector distribution with the OpenTelemetry Collector Builder (ocb).
#
#   collector-config/build-collector.sh          # prints the binary path on its last line
#
# The builder is installed with `go install` and the binary built into
#   ${TENANTWATCH_CACHE:-$HOME/.cache/tenantwatch}/otelcol/<sha256 of builder-config.yaml>/tenantwatch-otelcol
# so it is rebuilt only when the manifest changes. Needs Go and the Go module proxy, nothing else.
# Progress goes to stderr, one line per step with its duration (collector-config/progress.sh); stdout is the path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
progress_name=collector
# shellcheck source=progress.sh
. "$here/progress.sh"
manifest="$here/builder-config.yaml"
builder_version="v0.161.0"
cache="${TENANTWATCH_CACHE:-$HOME/.cache/tenantwatch}"
hash="$(sha256sum "$manifest" | cut -c1-16)"
out="$cache/otelcol/$hash"
binary="$out/tenantwatch-otelcol"

if [ -x "$binary" ]; then
  say "cached build for manifest $hash: $binary"
  echo "$binary"
  exit 0
fi

start=$SECONDS
mkdir -p "$cache/bin" "$out"
builder="$cache/bin/builder-$builder_version"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
say "no cached build for manifest $hash; a cold build takes about 6 minutes on 2 cores and fills Go's caches" \
  "(~/go/pkg/mod and ~/.cache/go-build, about 6.5 GB together with Jaeger's build)"

install_builder() {
  GOBIN="$work/gobin" go install "go.opentelemetry.io/collector/cmd/builder@$builder_version" >"$work/install.log" 2>&1
}
if [ ! -x "$builder" ]; then
  if ! step "go install builder $builder_version" install_builder; then
    tail -n 40 "$work/install.log" >&2
    exit 1
  fi
  mv "$work/gobin/builder" "$builder"
else
  say "builder $builder_version cached: $builder"
fi

# The manifest's output_path is relative; build in a scratch directory and keep only the binary.
cp "$manifest" "$work/builder-config.yaml"
run_builder() {
  (cd "$work" && "$builder" --config builder-config.yaml >"$work/build.log" 2>&1)
}
if ! step "builder: go mod download and go build tenantwatch-otelcol" run_builder; then
  tail -n 40 "$work/build.log" >&2
  say "build failed (the last 40 lines of its log are above)"
  exit 1
fi
mv "$work/dist/tenantwatch-otelcol" "$binary.tmp"
mv "$binary.tmp" "$binary"
say "built in $((SECONDS - start)) s: $binary"
echo "$binary"
