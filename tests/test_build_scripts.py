"""The Go build scripts (collector-config/build-*.sh) say what they are doing, and the e2e fixture lets it through.

Go itself is replaced by a stand-in on PATH that does what the scripts ask of it (``go install`` drops a builder,
the builder writes ``dist/tenantwatch-otelcol``, ``go mod download -json`` names a module directory, ``go build -o``
writes the binary) in a fraction of a second, so the cold path of each script runs here without a network or minutes
of compilation. The real builds run in tests/e2e.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "collector-config"

_FAKE_GO = r"""#!/bin/sh
# stand-in for go: only what build-collector.sh and build-jaeger.sh call
case "$1" in
  install)
    mkdir -p "$GOBIN"
    cat >"$GOBIN/builder" <<'BUILDER'
#!/bin/sh
# stand-in for ocb: `builder --config builder-config.yaml` writes dist/tenantwatch-otelcol
[ "$2" = builder-config.yaml ] || { echo "unexpected arguments: $*"; exit 2; }
sleep "${FAKE_BUILD_SECONDS:-0}"
if [ -n "${FAKE_BUILD_ERROR:-}" ]; then echo "$FAKE_BUILD_ERROR"; exit 1; fi
mkdir -p dist
printf '#!/bin/sh\necho otelcol\n' >dist/tenantwatch-otelcol
chmod +x dist/tenantwatch-otelcol
BUILDER
    chmod +x "$GOBIN/builder"
    ;;
  mod)
    mkdir -p "$FAKE_MODULE_DIR/cmd/jaeger"
    printf '{"Path": "github.com/jaegertracing/jaeger", "Dir": "%s"}\n' "$FAKE_MODULE_DIR"
    ;;
  build)
    sleep "${FAKE_BUILD_SECONDS:-0}"
    if [ -n "${FAKE_BUILD_ERROR:-}" ]; then echo "$FAKE_BUILD_ERROR"; exit 1; fi
    [ "$2" = -o ] && [ -d cmd/jaeger ] || { echo "unexpected arguments or directory: $*"; exit 2; }
    printf '#!/bin/sh\necho jaeger\n' >"$3"
    chmod +x "$3"
    ;;
  *) echo "unexpected go command: $*" >&2; exit 2 ;;
esac
"""


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    go = bin_dir / "go"
    go.write_text(_FAKE_GO)
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "TENANTWATCH_CACHE": str(tmp_path / "cache"),
        "FAKE_MODULE_DIR": str(tmp_path / "module"),
        **extra,
    }


def _run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(CONFIG / script)], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def _manifest_hash() -> str:
    return hashlib.sha256((CONFIG / "builder-config.yaml").read_bytes()).hexdigest()[:16]


def test_a_cold_collector_build_prints_each_step_with_its_duration(tmp_path: Path) -> None:
    env = _environment(tmp_path, FAKE_BUILD_SECONDS="2.5", TENANTWATCH_PROGRESS_SECONDS="1")
    done = _run("build-collector.sh", env)
    assert done.returncode == 0, done.stderr
    binary = tmp_path / "cache" / "otelcol" / _manifest_hash() / "tenantwatch-otelcol"
    assert done.stdout.splitlines() == [str(binary)]
    assert os.access(binary, os.X_OK)
    lines = done.stderr.splitlines()
    assert lines[0].startswith("== [collector] no cached build for manifest ")
    assert "6.5 GB" in lines[0]  # the disk use is announced before Go starts filling its caches
    build = re.escape("builder: go mod download and go build tenantwatch-otelcol")
    heartbeats = [line for line in lines if line.endswith(" s so far")]
    assert len(heartbeats) >= 2, lines  # 2.5 s of a silent step, a line every second
    for line in heartbeats:
        assert re.fullmatch(rf"== \[collector\] {build}: \d+ s so far", line), line
    expected = [
        r"== \[collector\] go install builder v0\.161\.0 \.\.\.",
        r"== \[collector\] go install builder v0\.161\.0 \(\d+ s\)",
        rf"== \[collector\] {build} \.\.\.",
        rf"== \[collector\] {build} \([23] s\)",
        rf"== \[collector\] built in \d+ s: {re.escape(str(binary))}",
    ]
    steps = [line for line in lines[1:] if line not in heartbeats]
    assert len(steps) == len(expected), lines
    for line, pattern in zip(steps, expected, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert lines.index(heartbeats[0]) == lines.index(steps[2]) + 1  # heartbeats come while the build runs


def test_a_cached_collector_build_prints_one_line(tmp_path: Path) -> None:
    env = _environment(tmp_path)
    assert _run("build-collector.sh", env).returncode == 0
    again = _run("build-collector.sh", env)
    assert again.returncode == 0, again.stderr
    binary = tmp_path / "cache" / "otelcol" / _manifest_hash() / "tenantwatch-otelcol"
    assert again.stdout.splitlines() == [str(binary)]
    assert again.stderr.splitlines() == [f"== [collector] cached build for manifest {_manifest_hash()}: {binary}"]


def test_a_failed_collector_build_names_the_step_and_shows_the_log(tmp_path: Path) -> None:
    env = _environment(tmp_path, FAKE_BUILD_ERROR="go: module example.invalid/x: not found")
    done = _run("build-collector.sh", env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert re.search(
        r"^== \[collector\] builder: go mod download and go build tenantwatch-otelcol failed after \d+ s \(exit 1\)$",
        done.stderr,
        re.MULTILINE,
    )
    assert "go: module example.invalid/x: not found" in done.stderr


def test_a_cold_jaeger_build_prints_each_step_with_its_duration(tmp_path: Path) -> None:
    done = _run("build-jaeger.sh", _environment(tmp_path))
    assert done.returncode == 0, done.stderr
    binary = tmp_path / "cache" / "jaeger" / "v1.76.0" / "jaeger"
    assert done.stdout.splitlines() == [str(binary)]
    lines = done.stderr.splitlines()
    assert lines[0].startswith("== [jaeger] no cached build of v1.76.0")
    expected = [
        r"== \[jaeger\] go mod download github\.com/jaegertracing/jaeger@v1\.76\.0 \.\.\.",
        r"== \[jaeger\] go mod download github\.com/jaegertracing/jaeger@v1\.76\.0 \(\d+ s\)",
        r"== \[jaeger\] go build \./cmd/jaeger \.\.\.",
        r"== \[jaeger\] go build \./cmd/jaeger \(\d+ s\)",
        rf"== \[jaeger\] built in \d+ s: {re.escape(str(binary))}",
    ]
    assert len(lines[1:]) == len(expected), lines
    for line, pattern in zip(lines[1:], expected, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    again = _run("build-jaeger.sh", _environment(tmp_path))
    assert again.stderr.splitlines() == [f"== [jaeger] cached build v1.76.0: {binary}"]


def test_a_failed_jaeger_build_names_the_step_and_shows_the_log(tmp_path: Path) -> None:
    done = _run("build-jaeger.sh", _environment(tmp_path, FAKE_BUILD_ERROR="cmd/jaeger/main.go:1: syntax error"))
    assert done.returncode == 1
    assert re.search(r"^== \[jaeger\] go build \./cmd/jaeger failed after \d+ s \(exit 1\)$", done.stderr, re.MULTILINE)
    assert "cmd/jaeger/main.go:1: syntax error" in done.stderr


_INNER_CONFTEST = """
import importlib.util

_spec = importlib.util.spec_from_file_location("tenantwatch_e2e_conftest", {conftest!r})
_e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_e2e)
otelcol_binary = _e2e.otelcol_binary
jaeger_binary = _e2e.jaeger_binary
"""

_INNER_TEST = """
def test_needs_both_binaries(otelcol_binary, jaeger_binary):
    assert otelcol_binary.name == "tenantwatch-otelcol"
    assert jaeger_binary.name == "jaeger"
"""


@pytest.mark.parametrize("capture", ["fd", "sys"])
def test_the_e2e_fixtures_show_build_progress_while_pytest_captures_output(tmp_path: Path, capture: str) -> None:
    """`pytest -q` on an e2e test: the build lines reach the terminal, cold and cached, not only the test result."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(_INNER_CONFTEST.format(conftest=str(REPO / "tests" / "e2e" / "conftest.py")))
    (project / "test_inner.py").write_text(_INNER_TEST)
    env = _environment(tmp_path)
    argv = [sys.executable, "-m", "pytest", "-q", f"--capture={capture}", "-p", "no:cacheprovider"]
    argv += ["--rootdir", str(project), str(project)]

    cold = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=project, timeout=120, check=False)
    assert cold.returncode == 0, cold.stdout + cold.stderr
    terminal = cold.stdout + cold.stderr
    assert re.search(r"^== \[collector\] go install builder v0\.161\.0 \(\d+ s\)$", terminal, re.MULTILINE), terminal
    assert re.search(r"^== \[jaeger\] go build \./cmd/jaeger \(\d+ s\)$", terminal, re.MULTILINE), terminal

    cached = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=project, timeout=120, check=False)
    assert cached.returncode == 0, cached.stdout + cached.stderr
    terminal = cached.stdout + cached.stderr
    assert re.search(r"^== \[collector\] cached build for manifest \w+: ", terminal, re.MULTILINE), terminal
    assert re.search(r"^== \[jaeger\] cached build v1\.76\.0: ", terminal, re.MULTILINE), terminal
