"""A small driver for a Docker-compatible engine, for the image tests and the packaging benchmark.

The engine is the command named by ``WADESK_DOCKER`` (default ``docker``; on machines with
podman behind a wrapper, the wrapper's path). Every call is a subprocess with a timeout.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polling
import requests
from polling import GatewayHTTP, free_port

ROOT = Path(__file__).resolve().parents[2]
ENGINE_ENV = "WADESK_DOCKER"
BASE_IMAGE = "python:3.13-slim"  # the Dockerfile's PYTHON_IMAGE default


class EngineUnavailable(RuntimeError):
    """No container engine answers; ``str(err)`` says what was tried."""


# these tests poll container engine commands: every 0.1 s is often enough
wait_until = functools.partial(polling.wait_until, interval=0.1)


@dataclass
class Engine:
    command: list[str]

    @classmethod
    def from_environment(cls) -> Engine:
        raw = os.environ.get(ENGINE_ENV, "docker")
        engine = cls(shlex.split(raw))
        try:
            probe = engine.run("version", check=False, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EngineUnavailable(f"{ENGINE_ENV}={raw!r}: {exc}") from None
        if probe.returncode != 0:
            last = (probe.stderr.strip() or probe.stdout.strip()).splitlines()[-1:] or ["no output"]
            raise EngineUnavailable(f"`{raw} version` failed: {last[0]}")
        return engine

    @property
    def is_podman(self) -> bool:
        return "podman" in self.run("version", check=False, timeout=60).stdout.lower()

    def run(
        self, *args: str, check: bool = True, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [*self.command, *args]
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{shlex.join(cmd)} exited with {result.returncode}:\n{result.stdout[-4000:]}\n"
                f"{result.stderr[-4000:]}"
            )
        return result

    def build(
        self,
        tag: str,
        context: Path = ROOT,
        timeout: float = 1200,
        build_args: dict[str, str] | None = None,
        options: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """Build ``tag``; the image the tag named before is removed when nothing uses it, so
        that repeated test runs do not pile up images."""
        previous = self.image_id(tag)
        # podman records HEALTHCHECK only in Docker's image format; docker ignores the variable
        env = dict(os.environ, BUILDAH_FORMAT="docker")
        args = [f"--build-arg={key}={value}" for key, value in (build_args or {}).items()]
        result = self.run("build", "-t", tag, *args, *options, str(context), timeout=timeout, env=env)
        if previous and previous != self.image_id(tag):
            self.run("rmi", previous, check=False)
        return result

    def image_id(self, ref: str) -> str | None:
        result = self.run("image", "inspect", ref, "--format", "{{.Id}}", check=False)
        return (result.stdout.strip() or None) if result.returncode == 0 else None

    def inspect(self, kind: str, ref: str) -> dict[str, Any]:
        out = self.run(kind, "inspect", ref).stdout
        data = json.loads(out)
        return data[0] if isinstance(data, list) else data

    def image_size(self, ref: str) -> int:
        return int(self.run("image", "inspect", ref, "--format", "{{.Size}}").stdout.strip())

    def has_image(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False).returncode == 0


@dataclass
class Container(GatewayHTTP):
    engine: Engine
    name: str
    port: int | None = None
    token: str | None = None
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.http.trust_env = False  # never through a proxy from the environment

    # -- engine side --
    def logs(self) -> str:
        result = self.engine.run("logs", self.name, check=False)
        return result.stdout + result.stderr

    def state(self) -> dict[str, Any]:
        return dict(self.engine.inspect("container", self.name)["State"])

    def running(self) -> bool:
        return bool(self.state().get("Running"))

    def exit_code(self) -> int:
        return int(self.state()["ExitCode"])

    def wait_exit(self, timeout: float = 60) -> int:
        result = self.engine.run("wait", self.name, timeout=timeout)
        return int(result.stdout.strip().splitlines()[-1])

    def exec(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.engine.run("exec", self.name, *cmd, check=check)

    def stop(self, timeout: int = 10) -> float:
        """``docker stop -t timeout``; returns the seconds it took."""
        start = time.monotonic()
        self.engine.run("stop", "-t", str(timeout), self.name, timeout=timeout + 60)
        return time.monotonic() - start

    def remove(self) -> None:
        self.engine.run("rm", "-f", "-v", self.name, check=False)

    # -- HTTP side --
    @property
    def base(self) -> str:
        assert self.port is not None, "this container has no published port"
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 30) -> float:
        """Wait for GET /health to answer 200; returns the seconds waited."""
        start = time.monotonic()

        def healthy() -> bool:
            if not self.running():
                raise AssertionError(f"container {self.name} exited:\n{self.logs()[-6000:]}")
            try:
                return self.get("/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, timeout, f"GET /health of container {self.name} to answer 200")
        return time.monotonic() - start

    def status(self) -> dict[str, Any]:
        response = self.get("/status")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_state(self, state: str, timeout: float = 60) -> dict[str, Any]:
        return wait_until(
            lambda: (s := self.status())["state"] == state and s,
            timeout,
            f"/status of container {self.name} to say {state}",
            interval=0.2,
        )


class Containers:
    """Creates containers and volumes with unique names and removes them all in :meth:`cleanup`."""

    def __init__(self, engine: Engine, image: str, prefix: str = "wadesk-test") -> None:
        self.engine = engine
        self.image = image
        self.prefix = f"{prefix}-{os.getpid()}-{int(time.time() * 1000) % 100000}"
        self.count = 0
        self.names: list[str] = []
        self.volumes: list[str] = []

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{self.prefix}-{kind}{self.count}"

    def volume(self) -> str:
        name = self._name("vol")
        self.engine.run("volume", "create", name)
        self.volumes.append(name)
        return name

    def start(
        self,
        *,
        env: dict[str, str] | None = None,
        options: Sequence[str] = (),
        args: Sequence[str] = (),
        publish: bool = True,
        token: str | None = None,
    ) -> Container:
        """``docker run -d`` the image; with ``publish``, port 8080 on a free 127.0.0.1 port."""
        name = self._name("c")
        port = free_port() if publish else None
        cmd = ["run", "-d", "--name", name]
        if port is not None:
            cmd += ["-p", f"127.0.0.1:{port}:8080"]
        for key, value in (env or {}).items():
            cmd += ["-e", f"{key}={value}"]
        cmd += [*options, self.image, *args]
        self.names.append(name)
        self.engine.run(*cmd, timeout=120)
        return Container(self.engine, name, port, token)

    def cleanup(self) -> None:
        for name in self.names:
            self.engine.run("rm", "-f", "-v", name, check=False, timeout=60)
        for volume in self.volumes:
            self.engine.run("volume", "rm", "-f", volume, check=False, timeout=60)
