"""docker-compose.yml verified without docker: every container finds its files where its program looks for them.

Each service's file system is rebuilt under a temporary root from the compose file and the images (the model of
each image is in ``_compose.py``), its start command replayed, and the real tools check the files at exactly the
paths the containers' programs are given: promtool for Prometheus (and how many rule files it loads), amtool for the
Alertmanager config the one-shot renders, ``otelcol validate`` for the collector image.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from _compose import DockerIgnore, Stack
from _stack import CONFIG, REPO

pytestmark = pytest.mark.e2e

COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def stack(otelcol_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """docker-compose.yml laid out and started, with no variable set (a user without an .env file)."""
    root = tmp_path_factory.mktemp("compose")
    return Stack(COMPOSE, root, artifacts={"/otelcol": otelcol_binary}).up()


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=env)


def test_prometheus_in_compose_loads_every_shipped_rule_file(stack: Stack) -> None:
    prometheus = stack.containers["prometheus"]
    assert prometheus.argv[0] == "/bin/prometheus", prometheus.shell_output
    config_path = prometheus.flag("config.file")
    assert config_path is not None, prometheus.argv
    config_file = prometheus.host(config_path)
    config = yaml.safe_load(config_file.read_text())
    # the targets are the compose services, not the loopback defaults of the shipped file
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {"collector:8889", "collector:8888"}
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["alertmanager:9093"]
    # container paths in the config point under the root; relative ones stay relative to the config's directory
    config["rule_files"] = [
        str(prometheus.root) + pattern if pattern.startswith("/") else pattern for pattern in config["rule_files"]
    ]
    config_file.write_text(yaml.safe_dump(config))

    done = _run(["promtool", "check", "config", str(config_file)])
    assert done.returncode == 0, done.stdout + done.stderr
    shipped = sorted((CONFIG / "prometheus" / "rules").glob("*.yml"))
    assert shipped
    found = re.search(r"SUCCESS: (\d+) rule files found", done.stdout)
    assert (int(found.group(1)) if found else 0) == len(shipped), done.stdout
    assert prometheus.flag("storage.tsdb.path") == "/prometheus"  # the image's volume
    assert all(f"{rule.name}" in done.stdout for rule in shipped), done.stdout


def test_alertmanager_in_compose_reads_the_rendered_config_and_it_passes_amtool(stack: Stack) -> None:
    alertmanager = stack.containers["alertmanager"]
    assert alertmanager.argv[0] == "/bin/alertmanager"
    config_path = alertmanager.flag("config.file")
    assert config_path is not None
    rendered = alertmanager.host(config_path)
    assert rendered.is_file(), f"{config_path} is not written by the alertmanager-config one-shot"
    done = _run(["amtool", "check-config", str(rendered)])
    assert done.returncode == 0, done.stdout + done.stderr
    # with no secret set, the receivers fall back to the local defaults instead of failing the render
    config = yaml.safe_load(rendered.read_text())
    slack = next(r for r in config["receivers"] if r["name"] == "chat")["slack_configs"][0]
    assert slack["api_url"].startswith("http://127.0.0.1:")


def test_collector_image_config_passes_otelcol_validate(stack: Stack) -> None:
    collector = stack.containers["collector"]
    assert collector.argv[0] == "/otelcol"
    binary = collector.host("/otelcol")
    config_path = collector.flag("config")
    assert config_path is not None
    assert collector.host(config_path).is_file(), f"{config_path} is not copied into the image"
    arguments = [str(collector.host(a)) if a.startswith("/") else a for a in collector.argv[1:]]
    env = {"PATH": os.environ["PATH"], **collector.environment}
    done = _run([str(binary), "validate", *arguments], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    # the collector sends traces to the jaeger service and listens on every interface of its container
    assert collector.environment["JAEGER_OTLP_ENDPOINT"].split(":")[0] in stack.containers
    assert collector.environment["OTELCOL_OTLP_GRPC_ENDPOINT"].startswith("0.0.0.0:")


def test_grafana_in_compose_provisions_every_shipped_dashboard(stack: Stack) -> None:
    grafana = stack.containers["grafana"]
    providers = yaml.safe_load(grafana.host("/etc/grafana/provisioning/dashboards/dashboards.yml").read_text())
    folder = grafana.host(providers["providers"][0]["options"]["path"])
    shipped = {path.name for path in (CONFIG / "grafana" / "dashboards").glob("*.json")}
    assert shipped
    assert {path.name for path in folder.glob("*.json")} == shipped
    for path in folder.glob("*.json"):
        json.loads(path.read_text())
    datasources = yaml.safe_load(grafana.host("/etc/grafana/provisioning/datasources/datasources.yml").read_text())
    for source in datasources["datasources"]:
        variable = re.fullmatch(r"\$\{(\w+):-[^}]*\}", source["url"])
        url = grafana.environment[variable.group(1)] if variable else source["url"]
        assert urlsplit(url).hostname in stack.containers, url


def test_app_and_traffic_images_hold_what_their_commands_run(stack: Stack) -> None:
    app = stack.containers["app"]
    assert app.argv[:2] == ["uvicorn", "examples.okr_app.main:app"]
    assert app.host("examples/okr_app/main.py").is_file()
    for needed in ("pyproject.toml", "README.md", "LICENSE", "src/tenantwatch/__init__.py"):  # pip install '.[…]'
        assert app.host(needed).is_file(), needed
    traffic = stack.containers["traffic"]
    assert traffic.argv[:2] == ["python", "examples/traffic.py"]
    assert traffic.host("examples/traffic.py").is_file()


# --- .dockerignore: the build context of the app image (context: the repository root) ------------------------------


def test_dockerignore_keeps_the_virtualenv_git_and_caches_out_of_the_build_context() -> None:
    ignore = DockerIgnore.read(REPO / ".dockerignore")
    for excluded in (
        ".venv/bin/python",
        ".venv/lib/python3.11/site-packages/sqlalchemy/__init__.py",
        ".git",  # a worktree's .git is a file
        ".git/objects/pack/pack-1.pack",
        "src/tenantwatch/__pycache__/config.cpython-311.pyc",
        "src/tenantwatch.egg-info/PKG-INFO",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/tenantwatch/config.data.json",
        ".ruff_cache/0.1/123",
        "build/lib/tenantwatch/__init__.py",
        "dist/tenantwatch-0.1.0-py3-none-any.whl",
    ):
        assert ignore.excludes(excluded), excluded
    for included in ("pyproject.toml", "README.md", "LICENSE", "src/tenantwatch/__init__.py", "examples/traffic.py"):
        assert not ignore.excludes(included), included


def test_the_app_build_context_of_this_checkout_is_small() -> None:
    """What `docker compose build` sends: no .venv (hundreds of MB here), no .git, only source."""
    ignore = DockerIgnore.read(REPO / ".dockerignore")
    files = list(ignore.context_files(REPO))
    assert not [f for f in files if f.startswith((".venv/", ".git/")) or f == ".git"]
    assert not [f for f in files if "__pycache__" in f.split("/")]
    size = sum((REPO / f).stat().st_size for f in files)
    assert size < 20 * 1024 * 1024, f"build context is {size / 1e6:.0f} MB"
