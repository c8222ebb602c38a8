"""The client side of differential privacy: clip an update to an L2 norm and add Gaussian noise.

One definition used by the client round, the gradient-inversion experiment and the tests, so the
mechanism that is measured is the mechanism that runs. The noise is drawn from a generator seeded by
the run seed, the round and the client, so a run stays reproducible from its config and seed.

Ignores: the privacy accounting (which epsilon a noise multiplier buys; the accountant's) and which
share of the noise a client adds (local DP adds all of it, distributed DP a 1/sqrt(k) share of the
standard deviation; the caller passes `noise_std`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fedray.learning.errors import PrivacyError
from fedray.learning.params import Params


@dataclass(frozen=True)
class NoiseSettings:
    """What one client does to its update: clip to `clip_norm`, add N(0, `noise_std`^2) per
    coordinate (`noise_std` absolute, already the client's share)."""

    clip_norm: float
    noise_std: float

    @staticmethod
    def of(
        mode: str, clip_norm: float, noise_multiplier: float, participants: int
    ) -> NoiseSettings:
        """Local DP: every client adds std z*C. Distributed DP: each of the `participants`
        clients adds z*C/sqrt(k), so the sum of the k updates carries std z*C."""
        if mode not in ("local", "distributed"):
            raise PrivacyError(f"privacy mode {mode!r} adds no noise (local | distributed)")
        if not (math.isfinite(noise_multiplier) and noise_multiplier >= 0):
            raise PrivacyError(f"noise multiplier must be finite and >= 0, got {noise_multiplier}")
        std = noise_multiplier * clip_norm
        if mode == "distributed":
            std /= math.sqrt(max(1, participants))
        return NoiseSettings(clip_norm, std)

    @staticmethod
    def from_chain(
        mode: str, clip_norm_fp: int, noise_milli: int, participants: int
    ) -> NoiseSettings | None:
        """The settings the chain's `dp_*` parameters ask of a client (None: no DP)."""
        if mode not in ("local", "distributed") or clip_norm_fp <= 0:
            return None
        return NoiseSettings.of(mode, clip_norm_fp / 65536, noise_milli / 1000, participants)


def l2_norm(delta: Params) -> float:
    """The L2 norm of the whole update, all tensors flattened together (float64 sum)."""
    return float(
        np.sqrt(sum(float(np.sum(np.square(v, dtype=np.float64))) for v in delta.values()))
    )


def clip_to_norm(delta: Params, clip_norm: float) -> tuple[Params, float]:
    """`delta` scaled down so its L2 norm is at most `clip_norm`, and its norm before clipping."""
    if not (math.isfinite(clip_norm) and clip_norm > 0):
        raise PrivacyError(f"clip_norm must be finite and positive, got {clip_norm}")
    norm = l2_norm(delta)
    if norm <= clip_norm:
        return dict(delta), norm
    scale = np.float32(clip_norm / norm)
    return {name: (v * scale).astype(np.float32) for name, v in delta.items()}, norm


def dp_seed(run_seed: int, round_: int, client: int) -> list[int]:
    """The seed sequence of `client`'s noise in `round_`: distinct from its training seed."""
    return [run_seed & 0x7FFFFFFF, round_, client, 0xD9]


def privatize(
    delta: Params, clip_norm: float, noise_std: float, rng: np.random.Generator
) -> tuple[Params, float]:
    """Clip `delta` to `clip_norm`, then add N(0, noise_std^2) to every coordinate.

    Returns the noisy update (float32) and the norm before clipping. `noise_std` is absolute
    (noise multiplier x clip_norm, or its share in distributed mode).
    """
    clipped, norm = clip_to_norm(delta, clip_norm)
    if not (math.isfinite(noise_std) and noise_std >= 0):
        raise PrivacyError(f"noise_std must be finite and >= 0, got {noise_std}")
    if noise_std == 0:
        return clipped, norm
    noisy = {
        name: (v + rng.normal(0.0, noise_std, size=v.shape)).astype(np.float32)
        for name, v in clipped.items()
    }
    return noisy, norm
