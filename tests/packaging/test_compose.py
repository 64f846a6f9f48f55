"""docker-compose.yml and .env.example, read as YAML (no compose engine runs on these
machines; where one answers, ``docker compose config`` checks the file too)."""

from __future__ import annotations

import contextlib
import re
import shlex

import pytest
from container_harness import ROOT, Engine, EngineUnavailable

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def service(compose: dict) -> dict:
    assert list(compose["services"]) == ["wadesk"]
    return compose["services"]["wadesk"]


def dockerfile_healthcheck() -> list[str]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    found = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])\s*$", text, re.M)
    assert found, "the Dockerfile has no HEALTHCHECK in exec form"
    return list(yaml.safe_load(found.group(1)))


def test_service_keeps_its_session_on_a_named_volume(compose: dict, service: dict) -> None:
    assert service["build"] == "."
    assert "wadesk-session:/app/session" in service["volumes"]
    assert "wadesk-session" in compose["volumes"]


def test_service_has_limits_restart_policy_and_health_check(service: dict) -> None:
    limits = service["deploy"]["resources"]["limits"]
    assert re.fullmatch(r"\d+[MG]", limits["memory"]), limits
    assert float(limits["cpus"]) > 0
    assert service["restart"] in ("unless-stopped", "always", "on-failure")
    health = service["healthcheck"]
    # the same check as the image's HEALTHCHECK: /health, without curl
    assert health["test"] == ["CMD", *dockerfile_healthcheck()]
    assert "/health" in " ".join(health["test"])
    for key in ("interval", "timeout", "start_period", "retries"):
        assert key in health


def test_token_is_a_docker_secret(compose: dict, service: dict) -> None:
    assert service["secrets"] == ["wadesk_api_token"]
    assert service["environment"]["WADESK_API_TOKEN_FILE"] == "/run/secrets/wadesk_api_token"
    assert "WADESK_API_TOKEN" not in service["environment"], "the token itself must not be in the file"
    assert compose["secrets"]["wadesk_api_token"]["file"] == "./secrets/wadesk_api_token"


def test_api_is_published_on_loopback_only(service: dict) -> None:
    for port in service["ports"]:
        assert str(port).startswith("127.0.0.1:"), port


def test_env_example_names_every_variable_the_compose_file_reads(service: dict) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    example = {
        line.split("=", 1)[0].strip()
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    assert used, "the compose file reads no variables"
    assert used == example, f"only in compose: {used - example}, only in .env.example: {example - used}"
    # and every setting the service passes through is one wadesk knows
    from wadesk.config import SETTINGS

    known = {s.env for s in SETTINGS}
    assert set(service["environment"]) <= known, set(service["environment"]) - known


def test_compose_config_with_an_engine_that_has_compose() -> None:
    try:
        engine = Engine.from_environment()
    except EngineUnavailable as exc:
        pytest.skip(f"no container engine: {exc}")
    probe = engine.run("compose", "version", check=False, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"`{shlex.join(engine.command)} compose` is not available: {probe.stderr.strip()[:200]}")
    secret = ROOT / "secrets" / "wadesk_api_token"
    made = not secret.exists()
    if made:
        secret.parent.mkdir(exist_ok=True)
        secret.write_text("compose-config-check-token-0123456789")
    try:
        result = engine.run("compose", "-f", str(COMPOSE), "config", "-q", check=False, timeout=120)
    finally:
        if made:
            secret.unlink()
            with contextlib.suppress(OSError):
                secret.parent.rmdir()
    assert result.returncode == 0, result.stdout + result.stderr
