"""The cluster templates parse, have the shape their tools expect, turn Ray's token
authentication on for every Ray process, run the image the Dockerfile builds (at fedray's version,
on the Dockerfile's Ray) or install this repository, and call `ray` where it is installed (they
are not deployed here)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import yaml

from fedray.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"REGISTRY/fedray:{VERSION}"  # what the Dockerfile builds, pushed to the user's registry
DOCKER_RAY = re.search(
    r"^FROM rayproject/ray:(\d+\.\d+\.\d+)-", (ROOT / "Dockerfile").read_text(), re.M
)


def test_kuberay_manifest_shape() -> None:
    docs = list(yaml.safe_load_all((CLUSTER / "kuberay-raycluster.yaml").read_text()))
    cluster = next(d for d in docs if d["kind"] == "RayCluster")
    assert cluster["apiVersion"] == "ray.io/v1"
    spec = cluster["spec"]
    assert spec["rayVersion"].startswith("2.60")
    assert spec["enableInTreeAutoscaling"] is True
    group = spec["workerGroupSpecs"][0]
    assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    mounts = [
        m["mountPath"] for c in group["template"]["spec"]["containers"] for m in c["volumeMounts"]
    ]
    assert "/runs" in mounts
    claims = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    assert claims and "ReadWriteMany" in claims[0]["spec"]["accessModes"]


def _token_env(env: list[dict[str, object]]) -> bool:
    by_name = {e["name"]: e for e in env}
    token = by_name.get("RAY_AUTH_TOKEN", {}).get("valueFrom", {})
    return by_name.get("RAY_AUTH_MODE", {}).get("value") == "token" and "secretKeyRef" in token


def test_kuberay_manifest_turns_token_auth_on_everywhere() -> None:
    docs = list(yaml.safe_load_all((CLUSTER / "kuberay-raycluster.yaml").read_text()))
    spec = next(d for d in docs if d["kind"] == "RayCluster")["spec"]
    if spec.get("authOptions", {}).get("mode") == "token":
        return  # the operator sets the token on every container
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    containers = [c for g in groups for c in g["template"]["spec"]["containers"]]
    assert containers and all(_token_env(c.get("env", [])) for c in containers)
    assert _token_env(spec["autoscalerOptions"].get("env", []))


def test_cluster_launcher_shape() -> None:
    cfg = yaml.safe_load((CLUSTER / "ray-cluster-launcher.yaml").read_text())
    for key in ("cluster_name", "provider", "head_start_ray_commands", "worker_start_ray_commands"):
        assert key in cfg
    assert cfg["provider"]["type"] == "local"
    assert any("torch==2.13.0" in c for c in cfg["setup_commands"])


def test_cluster_launcher_turns_token_auth_on_every_node() -> None:
    cfg = yaml.safe_load((CLUSTER / "ray-cluster-launcher.yaml").read_text())
    starts = [
        c
        for c in cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"]
        if "ray start" in c
    ]
    assert len(starts) == 2 and all("RAY_AUTH_MODE=token" in c for c in starts)
    assert "~/.ray/auth_token" in cfg["file_mounts"]  # the same token on every node


def _rayjob() -> dict[str, Any]:
    (job,) = yaml.safe_load_all((CLUSTER / "rayjob.yaml").read_text())
    return dict(job)


def _pod_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def test_kubernetes_manifests_run_the_image_the_dockerfile_builds() -> None:
    assert DOCKER_RAY is not None
    cluster = next(
        d
        for d in yaml.safe_load_all((CLUSTER / "kuberay-raycluster.yaml").read_text())
        if d["kind"] == "RayCluster"
    )
    job = _rayjob()
    submitter = job["spec"]["submitterPodTemplate"]["spec"]["containers"]
    for spec, extra in ((cluster["spec"], []), (job["spec"]["rayClusterSpec"], submitter)):
        assert spec["rayVersion"] == DOCKER_RAY.group(1)
        images = {c["image"] for c in [*_pod_containers(spec), *extra]}
        assert images == {IMAGE}, images  # never an image nothing builds (fedray:latest)


def test_rayjob_runs_fedray_on_its_own_token_protected_cluster() -> None:
    job = _rayjob()
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    spec = job["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["fedray", "run"] and "output_dir=/runs" in argv
    load_config(None, [a for a in argv[2:] if "=" in a])  # the picks resolve (presets shipped)
    assert isinstance(yaml.safe_load(spec["runtimeEnvYAML"]), dict)
    assert spec["shutdownAfterJobFinishes"] is True
    cluster = spec["rayClusterSpec"]
    submitter = spec["submitterPodTemplate"]["spec"]["containers"]
    assert all(_token_env(c.get("env", [])) for c in [*_pod_containers(cluster), *submitter])
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        mounts = [
            m["mountPath"]
            for c in group["template"]["spec"]["containers"]
            for m in c["volumeMounts"]
        ]
        assert "/runs" in mounts  # every validator writes its chain under the shared run dir


def _launcher_commands() -> list[str]:
    cfg = yaml.safe_load((CLUSTER / "ray-cluster-launcher.yaml").read_text())
    keys = [k for k in cfg if k.endswith("_commands")]
    return [c for k in keys for c in cfg[k] or []]


def test_cluster_launcher_installs_this_repository_never_fedray_from_an_index() -> None:
    cfg = yaml.safe_load((CLUSTER / "ray-cluster-launcher.yaml").read_text())
    mounted = {remote for remote, local in cfg["file_mounts"].items() if local in (".", "./")}
    installed = []
    for command in _launcher_commands():
        for part in command.split("&&"):
            argv = shlex.split(part)
            if "pip" in Path(argv[0]).name and argv[1:2] == ["install"]:
                targets = [a for a in argv[2:] if not a.startswith("-") and "://" not in a]
                assert "fedray" not in [t.split("==")[0].split("[")[0] for t in targets], part
                installed += [t for t in targets if not t.startswith("torch")]
    assert installed and all(t in mounted or t.startswith("git+") for t in installed), installed


def test_cluster_launcher_calls_ray_where_it_is_installed() -> None:
    # Over non-interactive SSH a venv is not active: a bare `ray` is not found.
    pip_dirs = set()
    calls = []
    for command in _launcher_commands():
        for part in re.split(r"&&|\|\||;", command):
            argv = [a for a in shlex.split(part) if "=" not in a.split("/")[0]]  # drop VAR=value
            if not argv:
                continue
            if Path(argv[0]).name == "pip":
                pip_dirs.add(str(Path(argv[0]).parent))
            if Path(argv[0]).name == "ray":
                calls.append(argv[0])
    assert calls and all(str(Path(c).parent) in pip_dirs for c in calls), (calls, pip_dirs)


def test_cluster_launcher_config_passes_rays_own_checks() -> None:
    # What `ray up` does with the file before it touches a machine (no Ray is started here).
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = prepare_config(yaml.safe_load((CLUSTER / "ray-cluster-launcher.yaml").read_text()))
    validate_config(cfg)
    (node_type,) = cfg["available_node_types"].values()
    assert node_type["min_workers"] == 4  # one worker per validator of a 4-validator chain
