# Progress lines for the Go build scripts (sourced by build-collector.sh and build-jaeger.sh).
#
#   progress_name=collector
#   step "go install builder v0.161.0" go_install_builder
#
# prints to stderr, so the binary path stays alone on stdout:
#   == [collector] go install builder v0.161.0 ...
#   == [collector] go install builder v0.161.0: 30 s so far          (every TENANTWATCH_PROGRESS_SECONDS, default 30)
#   == [collector] go install builder v0.161.0 (41 s)
# A cold build compiles for minutes without output of its own; these lines say what it is doing and for how long.

progress_name="${progress_name:-build}"

say() {
  echo "== [$progress_name] $*" >&2
}

# step LABEL COMMAND [ARG...]: run COMMAND (a program or a shell function), report start, heartbeat and duration.
# Returns COMMAND's exit status.
step() {
  local label="$1"
  shift
  local every="${TENANTWATCH_PROGRESS_SECONDS:-30}"
  local start=$SECONDS
  local next=$((start + every))
  local rc=0 pid
  say "$label ..."
  "$@" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$next" ]; then
      say "$label: $((SECONDS - start)) s so far"
      next=$((next + every))
    fi
    sleep 0.2
  done
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    say "$label failed after $((SECONDS - start)) s (exit $rc)"
    return "$rc"
  fi
  say "$label ($((SECONDS - start)) s)"
}
