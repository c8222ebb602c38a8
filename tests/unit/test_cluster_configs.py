"""The cluster templates parse and have the shape their tools expect (they are not deployed here)."""

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


def test_cluster_launcher_shape() -> None:
    cfg = yaml.safe_load((CLUSTER / "ray-cluster-launcher.yaml").read_text())
    for key in ("cluster_name", "provider", "head_start_ray_commands", "worker_start_ray_commands"):
        assert key in cfg
    assert cfg["provider"]["type"] == "local"
    assert any("torch==2.13.0" in c for c in cfg["setup_commands"])
