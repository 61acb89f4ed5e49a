"""docker-compose.yml without docker: each container's file system laid out in a directory, its start command replayed.

Docker does not run here, so the test reads the compose file the way Docker Compose would and rebuilds what each
container sees:

* ``${VAR:-default}`` interpolation with an empty environment (a user without an ``.env`` file);
* the image: a pulled image is modelled in :data:`IMAGES` (working directory, entrypoint, default command, the
  directories it ships); a built image is read from its Dockerfile's last stage (``WORKDIR``, ``COPY`` from the build
  context filtered by ``.dockerignore``, ``COPY --from`` mapped to a binary built here, ``ENTRYPOINT``, ``CMD``);
* ``volumes:``: a bind mount is a copy of the host path at the container path (a copy, so nothing a container writes
  reaches the checkout; ``:ro`` is not enforced, the tests run as root), a named volume a directory shared by every
  container that mounts it;
* the start command, with Docker's rule that a compose ``entrypoint:`` also clears the image's default command. A
  ``sh -c SCRIPT`` entrypoint runs for real under ``/bin/sh`` with every container path in it moved under the root
  (sed, python3 and the other utilities are the host's), up to the ``exec`` of the image's program, which is a stub
  recording its arguments. Any other entrypoint is the image's program itself.

What the tests then check is the program's arguments against the files at those paths: ``promtool check config``,
``amtool check-config``, ``otelcol validate`` on exactly the paths the real programs would open.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

# --- .dockerignore -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerIgnore:
    """The patterns of a ``.dockerignore`` file, matched the way Docker's build context loader matches them.

    Each line is a pattern (``#`` starts a comment), cleaned like a path and without a leading ``/``; ``*`` matches
    within one path element, ``**`` any number of elements, ``?`` one character; ``!`` re-includes. The last pattern
    that matches a path, or one of its parent directories, decides.
    """

    patterns: tuple[tuple[bool, re.Pattern[str]], ...]  # (is an exception, pattern)

    @classmethod
    def read(cls, path: Path) -> DockerIgnore:
        if not path.is_file():
            return cls(())
        patterns = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            line = os.path.normpath(line[1:].strip() if exception else line).lstrip("/")
            patterns.append((exception, re.compile(_translate(line))))
        return cls(tuple(patterns))

    def excludes(self, relative: str) -> bool:
        parts = PurePosixPath(relative).parts
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for exception, pattern in self.patterns:
            if any(pattern.fullmatch(candidate) for candidate in candidates):
                excluded = not exception
        return excluded

    def context_files(self, context: Path) -> Iterator[str]:
        """The files of the build context Docker would send, relative to ``context``."""
        can_prune = not any(exception for exception, _ in self.patterns)
        for directory, dirs, files in os.walk(context):
            relative_dir = os.path.relpath(directory, context)
            prefix = "" if relative_dir == "." else relative_dir + "/"
            if can_prune:
                dirs[:] = [d for d in dirs if not self.excludes(prefix + d)]
            for name in files:
                if not self.excludes(prefix + name):
                    yield prefix + name


def _translate(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = pattern.find("]", i + 1)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        elif char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


# --- images --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """What a container starts from: working directory, entrypoint, default command, directories that exist.

    ``program`` is the executable the tests stand in for (its arguments are recorded, it is not run);
    ``files`` maps container paths to host files laid out before the volumes (a built image's ``COPY``).
    """

    workdir: str = "/"
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    directories: tuple[str, ...] = ()
    program: str | None = None
    files: Mapping[str, Path] = field(default_factory=dict)


# The pulled images of docker-compose.yml, as their Dockerfiles define them (image tags as in the compose file):
IMAGES: dict[str, Image] = {
    # prom/prometheus v2.x: WORKDIR /prometheus (also a VOLUME, owned by nobody like /etc/prometheus, which holds the
    # default prometheus.yml), ENTRYPOINT ["/bin/prometheus"],
    # CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]. Relative paths in
    # the config (rule_files) are resolved against the directory of the config file.
    "prom/prometheus": Image(
        workdir="/prometheus",
        entrypoint=("/bin/prometheus",),
        cmd=("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"),
        directories=("/prometheus", "/etc/prometheus"),
        program="/bin/prometheus",
    ),
    # prom/alertmanager v0.2x: WORKDIR /etc/alertmanager, ENTRYPOINT ["/bin/alertmanager"],
    # CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"].
    "prom/alertmanager": Image(
        workdir="/etc/alertmanager",
        entrypoint=("/bin/alertmanager",),
        cmd=("--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"),
        directories=("/etc/alertmanager", "/alertmanager"),
        program="/bin/alertmanager",
    ),
    # python:3.11-slim: no WORKDIR (/), no ENTRYPOINT, CMD ["python3"]; python3 and sh on PATH (the host's here).
    "python": Image(cmd=("python3",)),
    # grafana/grafana: reads provisioning from /etc/grafana/provisioning (GF_PATHS_PROVISIONING) and its data from
    # /var/lib/grafana; started by /run.sh. Only the provisioning files are checked (no Grafana binary here).
    "grafana/grafana": Image(workdir="/usr/share/grafana", entrypoint=("/run.sh",), program="/run.sh"),
    # jaegertracing/jaeger 2.x and postgres: started with their built-in defaults, no file from this repository.
    "jaegertracing/jaeger": Image(entrypoint=("/cmd/jaeger/jaeger-linux",), program="/cmd/jaeger/jaeger-linux"),
    "postgres": Image(entrypoint=("docker-entrypoint.sh",), cmd=("postgres",), program="docker-entrypoint.sh"),
}


def built_image(context: Path, dockerfile: Path, artifacts: Mapping[str, Path]) -> Image:
    """The image a Dockerfile builds, from its last stage: ``FROM`` (a modelled base image), ``WORKDIR``, ``COPY``,
    ``ENTRYPOINT``, ``CMD`` (JSON form). ``COPY --from=<stage>`` takes the host file ``artifacts[<destination>]``;
    ``RUN`` is not replayed."""
    lines = _dockerfile_instructions(dockerfile.read_text())
    last_from = max(i for i, (op, _) in enumerate(lines) if op == "FROM")
    base_name = lines[last_from][1].split()[0]
    base = IMAGES.get(_image_name(base_name), Image())
    workdir, entrypoint, cmd = base.workdir, base.entrypoint, base.cmd
    files: dict[str, Path] = {}
    included = sorted(DockerIgnore.read(context / ".dockerignore").context_files(context))
    for op, argument in lines[last_from + 1 :]:
        if op == "WORKDIR":
            workdir = str(PurePosixPath(workdir) / argument)
        elif op == "ENTRYPOINT":
            entrypoint, cmd = tuple(yaml.safe_load(argument)), ()
        elif op == "CMD":
            cmd = tuple(yaml.safe_load(argument))
        elif op == "COPY":
            words = shlex.split(argument)
            source_stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            words = [w for w in words if not w.startswith("--")]
            *sources, destination = words
            target = PurePosixPath(workdir) / destination
            if source_stage is not None:
                files[str(target)] = artifacts[str(target)]
                continue
            for source in sources:
                many = len(sources) > 1
                files.update(_context_copy(context, source, destination, target, many=many, included=included))
    program = entrypoint[0] if entrypoint else (cmd[0] if cmd else None)
    return Image(workdir=workdir, entrypoint=entrypoint, cmd=cmd, program=program, files=files)


def _context_copy(
    context: Path, source: str, destination: str, target: PurePosixPath, *, many: bool, included: list[str]
) -> dict[str, Path]:
    """Container path -> host file for ``COPY source destination`` from a build context of ``included`` files."""
    host = context / source
    if host.is_dir():  # a directory's contents go into the destination
        prefix = source.strip("/").removeprefix("./") + "/"
        return {str(target / name[len(prefix) :]): context / name for name in included if name.startswith(prefix)}
    if source not in included:
        raise FileNotFoundError(f"COPY {source}: not in the build context {context} (missing or in .dockerignore)")
    into_directory = many or destination.endswith("/") or destination in {".", "/"}
    return {str(target / host.name if into_directory else target): host}


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            op, _, argument = line.partition(" ")
            out.append((op.upper(), argument.strip()))
    return out


def _image_name(reference: str) -> str:
    name = reference.split("@", maxsplit=1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return name


# --- compose -------------------------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """Compose interpolation: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR-default}``, ``${VAR:-default}``."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1) or match.group(4)
            operator, default = match.group(2), match.group(3)
            current = environ.get(name)
            if operator == ":-" and not current:
                return default
            if operator == "-" and current is None:
                return default
            return current or ""

        return _VARIABLE.sub(substitute, value)
    if isinstance(value, list):
        return [interpolate(item, environ) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, environ) for key, item in value.items()}
    return value


# an absolute path at the start of a word, after `=` (--flag=/path), a quote or a redirection
_CONTAINER_PATH = re.compile(r"(^|[\s=\"'<>])(/[\w.*@+-][\w.*@+/-]*)")


@dataclass
class Container:
    """One service's file system under ``root`` and the arguments its program was started with."""

    service: str
    root: Path
    image: Image
    environment: dict[str, str]
    argv: list[str] = field(default_factory=list)  # the program's argv (argv[0] the container path of the program)
    shell_output: str = ""

    def host(self, container_path: str) -> Path:
        """The host path of a container path (relative paths are relative to the working directory)."""
        absolute = PurePosixPath(self.image.workdir) / container_path
        return self.root / str(absolute).lstrip("/")

    def flag(self, name: str) -> str | None:
        """The value of ``--name=value`` or ``--name value`` among the program's arguments."""
        for i, argument in enumerate(self.argv[1:], start=1):
            if argument.startswith(f"--{name}="):
                return argument.split("=", 1)[1]
            if argument == f"--{name}" and i + 1 < len(self.argv):
                return self.argv[i + 1]
        return None

    def rewrite(self, text: str) -> str:
        """``text`` (a shell script) with every absolute container path moved under the root."""
        return _CONTAINER_PATH.sub(lambda m: m.group(1) + str(self.root) + m.group(2), text)


@dataclass
class Stack:
    """Every service of a compose file, laid out under ``root`` and started in dependency order."""

    compose_file: Path
    root: Path
    artifacts: Mapping[str, Path] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)

    def up(self) -> Stack:
        compose = interpolate(yaml.safe_load(self.compose_file.read_text()), self.environ)
        services: dict[str, Any] = compose["services"]
        for name in _dependency_order(services):
            self.containers[name] = self._start(name, services[name])
        return self

    def _image(self, service: dict[str, Any]) -> Image:
        if "build" in service:
            build = service["build"]
            context = self.compose_file.parent / build["context"]
            dockerfile = context / build.get("dockerfile", "Dockerfile")  # relative to the context, as in compose
            return built_image(context, dockerfile, self.artifacts)
        return IMAGES[_image_name(service["image"])]

    def _start(self, name: str, service: dict[str, Any]) -> Container:
        image = self._image(service)
        root = self.root / "containers" / name
        for directory in (image.workdir, *image.directories):
            (root / directory.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for container_path, host in image.files.items():
            _copy(host, root / container_path.lstrip("/"))
        for volume in service.get("volumes", []):
            source, destination = volume.split(":")[:2]
            target = root / destination.lstrip("/")
            if source.startswith((".", "/")):
                _copy((self.compose_file.parent / source).resolve(), target)
            else:
                shared = self.root / "volumes" / source
                shared.mkdir(parents=True, exist_ok=True)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(shared, target_is_directory=True)
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        container = Container(name, root, image, {k: str(v) for k, v in environment.items()})
        # Docker's rule: a compose entrypoint replaces the image's and also drops the image's default command.
        entrypoint = _argv(service["entrypoint"]) if "entrypoint" in service else list(image.entrypoint)
        default_cmd: list[str] = [] if "entrypoint" in service else list(image.cmd)
        command = _argv(service["command"]) if "command" in service else default_cmd
        argv = entrypoint + command
        if len(argv) >= 3 and PurePosixPath(argv[0]).name == "sh" and argv[1] == "-c":
            container.argv = self._run_shell(container, argv[2], argv[3:])
        else:
            container.argv = argv
        return container

    def _run_shell(self, container: Container, script: str, arguments: list[str]) -> list[str]:
        """Run ``sh -c script args…`` against the container's files; return the argv the image's program got."""
        record = container.root / ".program-argv"
        # the image's programs (stubs) first, then the host's utilities standing in for the image's
        path = [str(container.root / "usr/local/bin"), str(container.root / "bin"), "/usr/bin", "/bin"]
        if container.image.program is not None:
            stub = container.host(container.image.program)
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text(f"#!/bin/sh\nprintf '%s\\0' \"$0\" \"$@\" > '{record}'\n")
            stub.chmod(0o755)
        done = subprocess.run(
            ["/bin/sh", "-c", container.rewrite(script), *arguments],
            cwd=container.host("."),
            env={**container.environment, "PATH": os.pathsep.join(path), "HOME": str(container.root / "root")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        container.shell_output = done.stdout + done.stderr
        if done.returncode != 0:
            raise RuntimeError(f"{container.service}: sh -c exited {done.returncode}: {container.shell_output}")
        if not record.exists():
            return []  # a one-shot that never starts the image's program
        argv = record.read_text().split("\0")[:-1]
        argv[0] = "/" + os.path.relpath(argv[0], container.root)
        return [_strip_root(argument, container.root) for argument in argv]


def _strip_root(argument: str, root: Path) -> str:
    return argument.replace(str(root), "")


def _argv(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(item) for item in value]


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)


def _dependency_order(services: Mapping[str, Any]) -> list[str]:
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        depends = services[name].get("depends_on") or []
        for dependency in depends if isinstance(depends, list) else list(depends):
            visit(dependency)
        order.append(name)

    for name in services:
        visit(name)
    return order
