"""Privacy accounting: which (epsilon, delta) a noise multiplier buys, through Opacus's accountant.

fedray does not implement Renyi-DP itself: every number here comes from
`opacus.accountants.RDPAccountant` (Mironov 2017; Mironov, Talwar, Zhang 2019 for subsampling)
and `opacus.accountants.utils.get_noise_multiplier`.

- `epsilon(z, q, steps, delta)`: the epsilon of `steps` rounds of the sampled Gaussian mechanism
  with noise multiplier z and sampling rate q.
- `noise_multiplier(target, delta, q, steps)`: the smallest z (Opacus's bisection, to 0.01 in
  epsilon) that keeps `steps` rounds within the target.
- `epsilon_table(z, delta, participations)`: a client's cumulative epsilon after 1, 2, ...
  participations, in integer micro-epsilon (rounded up): what the chain stores and looks up.
  Each participation is one Gaussian mechanism with sampling rate 1, because selection on the
  chain is public (a VRF draw everyone can recompute), so the amplification that random client
  sampling gives when the sample is secret does not apply to a client whose participation is
  known. The table therefore depends on (z, delta) only.

Ignores: which share of the noise each client adds (`dp.NoiseSettings`), and record-level DP of
local SGD steps (this is client-level DP: a client's whole shard is the unit protected).
"""

from __future__ import annotations

import math

from fedray.learning.errors import PrivacyError

MICRO = 1_000_000


def _check(delta: float, sample_rate: float, steps: int) -> None:
    if not 0 < delta < 1:
        raise PrivacyError(f"delta must be in (0, 1), got {delta}")
    if not 0 < sample_rate <= 1:
        raise PrivacyError(f"sampling rate must be in (0, 1], got {sample_rate}")
    if steps < 1:
        raise PrivacyError(f"steps must be at least 1, got {steps}")


def epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """Epsilon after `steps` sampled Gaussian mechanisms (RDP accountant); inf without noise."""
    _check(delta, sample_rate, steps)
    if not (math.isfinite(noise_multiplier) and noise_multiplier >= 0):
        raise PrivacyError(f"noise multiplier must be finite and >= 0, got {noise_multiplier}")
    if noise_multiplier == 0:
        return math.inf
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(noise_multiplier, sample_rate, steps)]
    return float(accountant.get_epsilon(delta))


def noise_multiplier(target_epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    """The noise multiplier that keeps `steps` mechanisms at sampling rate q within
    (target_epsilon, delta); 0 for an infinite target (no privacy asked)."""
    _check(delta, sample_rate, steps)
    if target_epsilon == math.inf:
        return 0.0
    if not target_epsilon > 0:
        raise PrivacyError(f"target epsilon must be > 0, got {target_epsilon}")
    from opacus.accountants.utils import get_noise_multiplier

    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant="rdp",
        )
    )


def epsilon_table(noise_multiplier_: float, delta: float, participations: int) -> tuple[int, ...]:
    """Cumulative micro-epsilon after 1..`participations` participations (sampling rate 1),
    rounded up so the chain never undercounts."""
    if participations < 1:
        raise PrivacyError(f"participations must be at least 1, got {participations}")
    if not noise_multiplier_ > 0:
        raise PrivacyError("a privacy budget needs noise (noise multiplier > 0)")
    from opacus.accountants import RDPAccountant

    out = []
    for r in range(1, participations + 1):
        accountant = RDPAccountant()
        accountant.history = [(noise_multiplier_, 1.0, r)]
        out.append(math.ceil(accountant.get_epsilon(delta) * MICRO))
    return tuple(out)
