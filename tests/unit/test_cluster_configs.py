"""The cluster templates parse, have the shape their tools expect, and turn Ray's token
authentication on for every Ray process (they are not deployed here)."""

from __future__ import annotations

from pathlib import Path

import yaml

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"


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
