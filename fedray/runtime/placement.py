"""Where one run's actors sit when the run is given a placement group (a Ray Tune trial's).

A Tune trial runs its driver in bundle 0 of the trial's placement group, and Ray places every actor
the driver creates without an explicit strategy into that group too (Tune captures child tasks). So
a trial's group must hold the whole run, and each actor must name its bundle:
bundle 0 the trial driver, bundles 1..V one per validator with its ingress, then one per client
pool. `RunLayout.bundles()` is that list (what `tune.PlacementGroupFactory` is given), and
`check_bundles` refuses a group that cannot hold the run, as one `ConfigError` line, before any
actor is created.

Outside a placement group `RunActors` makes its own SPREAD group for the validators and leaves the
pools to Ray's default scheduling; this module is only the layout inside a given group.
A pool's bundle also holds its GPUs when `runtime.pool_num_gpus` asks for some. Ignored: custom
resources (fedray's actors ask for none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fedray.errors import ConfigError
from fedray.federation.plan import Federation, ingress_cpus

DRIVER_CPUS = 0.5
"""The trial driver's bundle by default: it evaluates each round's model and tallies the round."""


@dataclass(frozen=True)
class RunLayout:
    """The bundles of a run: the driver's, one per validator (with its ingress), one per pool."""

    validators: int
    pools: int
    validator_cpus: float  # the validator actor's; its bundle adds `ingress_cpus`
    pool_cpus: float
    driver_cpus: float = DRIVER_CPUS
    pool_gpus: float = 0.0
    ingress_cpus: float = 0.0  # an ingress actor of its own (runtime.ingress=actor)

    @staticmethod
    def of(fed: Federation, driver_cpus: float = DRIVER_CPUS) -> RunLayout:
        rt = fed.cfg.runtime
        return RunLayout(
            fed.cfg.chain.validators,
            len(fed.pools()),
            rt.validator_num_cpus,
            rt.pool_num_cpus,
            driver_cpus,
            rt.pool_num_gpus,
            ingress_cpus(rt),
        )

    def bundles(self) -> list[dict[str, float]]:
        """Bundle 0 the driver's, then the validators', then the pools'."""
        return (
            [{"CPU": self.driver_cpus}]
            + [{"CPU": self.validator_cpus + self.ingress_cpus}] * self.validators
            + [self._pool_bundle()] * self.pools
        )

    def _pool_bundle(self) -> dict[str, float]:
        if self.pool_gpus > 0:
            return {"CPU": self.pool_cpus, "GPU": self.pool_gpus}
        return {"CPU": self.pool_cpus}

    def validator_bundle(self, index: int) -> int:
        """The bundle of validator `index` and of its ingress."""
        if not 0 <= index < self.validators:
            raise IndexError(f"validator {index} of {self.validators}")
        return 1 + index

    def pool_bundle(self, index: int) -> int:
        if not 0 <= index < self.pools:
            raise IndexError(f"pool {index} of {self.pools}")
        return 1 + self.validators + index

    def total_cpus(self) -> float:
        return sum(b["CPU"] for b in self.bundles())


def check_bundles(layout: RunLayout, given: Sequence[Mapping[str, float]]) -> None:
    """Refuse a placement group whose bundles cannot hold `layout`'s actors (bundle 0, the
    driver's, is whatever the group gives)."""
    want = layout.bundles()
    short = [
        i
        for i, need in enumerate(want[1:], start=1)
        if i >= len(given)
        or any(given[i].get(kind, 0.0) + 1e-9 < amount for kind, amount in need.items())
    ]
    if short:
        raise ConfigError(
            f"the run is inside a placement group of {len(given)} bundles "
            f"({[dict(b) for b in given]}) that cannot hold its actors: it needs {want} "
            f"(driver, {layout.validators} validators with ingress, {layout.pools} client pools); "
            "size the group with fedray.sweep's trial_resources(cfg)"
        )
