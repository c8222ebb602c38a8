"""A trial's placement group: one bundle for its driver, one per validator (with its ingress),
one per client pool (attackers get a pool of their own), sized from the run's RuntimeConfig; a
group that cannot hold the run is refused before any actor starts."""

from __future__ import annotations

import pytest

from fedray.config import load_config
from fedray.errors import ConfigError
from fedray.federation.plan import INGRESS_CPUS, Federation
from fedray.runtime.placement import RunLayout, check_bundles
from fedray.sweep.spec import parse_sweep
from fedray.sweep.trials import TrialResources


def layout(*overrides: str, driver_cpus: float = 0.5) -> RunLayout:
    return RunLayout.of(Federation(load_config(None, list(overrides))), driver_cpus)


@pytest.mark.parametrize("ingress, ingress_cpus", [("validator", 0.0), ("actor", INGRESS_CPUS)])
def test_bundles_hold_the_driver_each_validator_with_its_ingress_and_each_pool(
    ingress: str, ingress_cpus: float
) -> None:
    run = layout(
        "chain.validators=3",
        "runtime.client_pools=2",
        "runtime.validator_num_cpus=0.4",
        "runtime.pool_num_cpus=0.7",
        f"runtime.ingress={ingress}",
        driver_cpus=0.25,
    )
    assert run.bundles() == [
        {"CPU": 0.25},
        *[{"CPU": 0.4 + ingress_cpus}] * 3,
        *[{"CPU": 0.7}] * 2,
    ]
    assert [run.validator_bundle(i) for i in range(3)] == [1, 2, 3]
    assert [run.pool_bundle(i) for i in range(2)] == [4, 5]
    assert run.total_cpus() == pytest.approx(0.25 + 3 * (0.4 + ingress_cpus) + 2 * 0.7)


def test_attackers_get_a_pool_and_a_bundle_of_their_own() -> None:
    honest = layout("runtime.client_pools=1")
    attacked = layout("runtime.client_pools=1", "attack=sign_flip")
    assert (honest.pools, attacked.pools) == (1, 2)
    assert len(attacked.bundles()) == len(honest.bundles()) + 1
    # without the driver's bundle, what launch's CPU check counts
    fed = Federation(load_config(None, ["runtime.client_pools=1", "attack=sign_flip"]))
    assert attacked.total_cpus() - attacked.driver_cpus == pytest.approx(fed.cpus_needed())


def test_bundle_indices_stay_inside_the_layout() -> None:
    run = layout("chain.validators=2", "runtime.client_pools=1")
    with pytest.raises(IndexError):
        run.validator_bundle(2)
    with pytest.raises(IndexError):
        run.pool_bundle(1)


def test_a_group_that_cannot_hold_the_run_is_refused() -> None:
    run = layout("chain.validators=2", "runtime.client_pools=1")
    check_bundles(run, run.bundles())
    check_bundles(run, [{"CPU": 0.01}, *run.bundles()[1:]])  # the driver's bundle is the group's
    with pytest.raises(ConfigError, match="cannot hold its actors"):
        check_bundles(run, run.bundles()[:-1])  # no bundle for the pool
    smaller = [dict(b) for b in run.bundles()]
    smaller[1]["CPU"] -= 0.01
    with pytest.raises(ConfigError, match="cannot hold its actors"):
        check_bundles(run, smaller)


def test_each_trial_is_sized_from_its_own_config() -> None:
    spec = parse_sweep(
        {
            "base": "minimal",
            "grid": {"chain.validators": [1, 4], "attack": ["none", "sign_flip"]},
            "resources": {"driver_cpus": 0.2},
        }
    )
    sizes = {
        (p["chain.validators"], p["attack"]): TrialResources(spec).bundles(p)
        for p in spec.grid_points()
    }
    validator = {"CPU": 0.2}  # each validator hosts its ingress
    assert sizes[(1, "none")] == [{"CPU": 0.2}, validator, {"CPU": 0.3}]
    assert sizes[(4, "sign_flip")] == [{"CPU": 0.2}, *[validator] * 4, {"CPU": 0.3}, {"CPU": 0.3}]


def test_pools_that_ask_for_a_gpu_get_it_in_their_bundles() -> None:
    run = layout("chain.validators=1", "runtime.client_pools=2", "runtime.pool_num_gpus=0.5")
    assert run.bundles()[-2:] == [{"CPU": 0.3, "GPU": 0.5}] * 2
    assert "GPU" not in run.bundles()[1]  # validators need none
    cpu_only = [{k: v for k, v in b.items() if k != "GPU"} for b in run.bundles()]
    with pytest.raises(ConfigError, match="cannot hold"):
        check_bundles(run, cpu_only)
