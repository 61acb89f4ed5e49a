#!/usr/bin/env bash
# Build the tenantwatch collector distribution with the OpenTelemetry Collector Builder (ocb).
#
#   collector-config/build-collector.sh          # prints the binary path on its last line
#
# The builder is installed with `go install` and the binary built into
#   ${TENANTWATCH_CACHE:-$HOME/.cache/tenantwatch}/otelcol/<sha256 of builder-config.yaml>/tenantwatch-otelcol
# so it is rebuilt only when the manifest changes. Needs Go and the Go module proxy, nothing else.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
manifest="$here/builder-config.yaml"
builder_version="v0.161.0"
cache="${TENANTWATCH_CACHE:-$HOME/.cache/tenantwatch}"
hash="$(sha256sum "$manifest" | cut -c1-16)"
out="$cache/otelcol/$hash"
binary="$out/tenantwatch-otelcol"

if [ -x "$binary" ]; then
  echo "collector: cached build for manifest $hash" >&2
  echo "$binary"
  exit 0
fi

start=$(date +%s)
mkdir -p "$cache/bin" "$out"
builder="$cache/bin/builder-$builder_version"
if [ ! -x "$builder" ]; then
  echo "collector: installing the Collector Builder $builder_version" >&2
  tmpbin="$(mktemp -d)"
  GOBIN="$tmpbin" go install "go.opentelemetry.io/collector/cmd/builder@$builder_version" >&2
  mv "$tmpbin/builder" "$builder"
  rmdir "$tmpbin"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The manifest's output_path is relative; build in a scratch directory and keep only the binary.
cp "$manifest" "$work/builder-config.yaml"
echo "collector: building tenantwatch-otelcol (this takes a few minutes the first time)" >&2
if ! (cd "$work" && "$builder" --config builder-config.yaml >"$work/build.log" 2>&1); then
  tail -n 40 "$work/build.log" >&2
  echo "collector: build failed" >&2
  exit 1
fi
mv "$work/dist/tenantwatch-otelcol" "$binary.tmp"
mv "$binary.tmp" "$binary"
echo "collector: built in $(( $(date +%s) - start )) s" >&2
echo "$binary"
