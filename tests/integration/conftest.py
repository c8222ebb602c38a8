"""One small local Ray cluster for the whole integration session, started the way `fedray run`
starts it (`fedray.runtime.cluster.init_ray`: 2 CPUs, a small object store, no dashboard, loopback
only, token authentication on); every test here is `integration`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    import ray

    from fedray.runtime.cluster import init_ray

    started = init_ray(num_cpus=2, object_store_mb=128, namespace="fedray-integration")
    yield
    if started:
        ray.shutdown()
