"""The aggregation precompile over a validator's blob store.

`BlobAggregation.aggregate(request)` loads the pinned int32 fixed-point payloads named by the request,
runs the round's aggregation (`fedray.aggregation.round.aggregate_round`: the chain's configured rule,
its median fallback, the saturating add to the global model), scores each update's contribution
(`scoring`), stores the new global model and strategy state as blobs, and returns their digests and
the verdicts. Under differential privacy, updates longer than the request's `max_norm` (the
chain's DP norm bound) are refused first: no weight, `FLAG_OVER_NORM`, which the slashing contract
penalizes; a refusal is a verdict, not an exception, so the round aggregates the others. Every step
is exact integer arithmetic, so all honest validators get the same digests.

Outcomes are also written to `<outcomes>/<request hash>.cbor`. Replaying a chain can then either
reuse them (fast verification of links, signatures and roots) or recompute every aggregation from the
stored payloads (`fedray chain verify --recompute`), in which case a stored outcome that differs from
the recomputed one is an error. A read-only instance (what `fedray chain verify` uses) writes
nothing: models it computes stay in memory, where later rounds of the replay find them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fedray.aggregation.base import FRAC_BITS, AggregationResult, ClientDelta, Verdict
from fedray.aggregation.dots import exact_sqnorms
from fedray.aggregation.fixedpoint import make_batch
from fedray.aggregation.round import aggregate_round
from fedray.core.encoding import decode, encode
from fedray.core.precompiles import (
    FLAG_OVER_NORM,
    AggregationOutcome,
    AggregationRequest,
    UpdateVerdict,
)
from fedray.errors import BlobError, FedrayError, PayloadValidationError
from fedray.node.scoring import score_updates
from fedray.storage.blobs import BlobStore, atomic_write
from fedray.storage.tensors import TensorSpec, tensors_digest, validate_payload


class AggregationMismatchError(FedrayError):
    """A recomputed aggregation differs from the outcome recorded when the block was executed."""

    code = "aggregation_mismatch"


class BlobAggregation:
    """An `AggregationPrecompile` reading and writing one validator's blob store."""

    def __init__(
        self,
        blobs: BlobStore,
        outcomes_dir: str | Path,
        *,
        recompute: bool = True,
        threads: int = 1,
        read_only: bool = False,
    ) -> None:
        self.blobs = blobs
        self.outcomes_dir = Path(outcomes_dir)
        self.read_only = read_only
        self._computed: dict[bytes, dict[str, np.ndarray]] = {}  # read-only: models kept here
        if not read_only:
            self.outcomes_dir.mkdir(parents=True, exist_ok=True)
        self.recompute = recompute
        self.threads = threads
        self.seconds = 0.0  # time spent aggregating (metrics)
        self._lock = threading.Lock()

    def _outcome_path(self, request: AggregationRequest) -> Path:
        return self.outcomes_dir / f"{request.hash().hex()}.cbor"

    def stored_outcome(self, request: AggregationRequest) -> AggregationOutcome | None:
        path = self._outcome_path(request)
        if not path.exists():
            return None
        return AggregationOutcome.from_canonical(decode(path.read_bytes()))

    def aggregate(self, request: AggregationRequest) -> AggregationOutcome:
        with self._lock:
            stored = self.stored_outcome(request)
            if stored is not None and not self.recompute:
                if not (self.blobs.has(stored.global_hash) or stored.global_hash in self._computed):
                    raise BlobError(
                        f"stored outcome names a missing model {stored.global_hash.hex()[:16]}"
                    )
                return stored
            outcome = self._compute(request)
            if stored is not None and stored != outcome:
                raise AggregationMismatchError(
                    f"round {request.round}: recomputed aggregation differs from the recorded outcome"
                )
            if stored is None and not self.read_only:
                atomic_write(self._outcome_path(request), encode(outcome.to_canonical()))
            return outcome

    def _get(self, digest: bytes) -> dict[str, np.ndarray]:
        return self._computed[digest] if digest in self._computed else self.blobs.get(digest)

    def _put(self, tensors: dict[str, np.ndarray]) -> bytes:
        if not self.read_only:
            return self.blobs.put(tensors)
        digest = tensors_digest(tensors)
        self._computed[digest] = tensors
        return digest

    def _compute(self, request: AggregationRequest) -> AggregationOutcome:
        start = time.perf_counter()
        global_model = self._get(request.global_hash)
        state = self._get(request.state_hash) if request.state_hash else None
        updates = [ClientDelta(key, self._get(h), n) for key, h, n in request.updates]
        over = over_norm(updates, request.max_norm, self.threads)
        kept = [u for u in updates if u.key not in over]
        config = json.loads(request.rule_config)
        if kept:
            round_ = aggregate_round(
                global_model, kept, request.rule, config, state, threads=self.threads
            )
            result, new_global = round_.result, round_.new_global
        else:  # every update was refused: the model and the strategy state stay as they are
            zero = {name: np.zeros_like(a) for name, a in global_model.items()}
            result, new_global = AggregationResult(zero, (), dict(state or {})), global_model
        refused = tuple(Verdict(key, False, False, True, 0) for key in sorted(over))
        result = AggregationResult(result.delta, result.verdicts + refused, result.state)
        global_hash = self._put(dict(new_global))
        state_hash = self._put(result.state) if result.state else b""
        by_key = {v.key: v for v in result.verdicts}
        ordered = [by_key[key] for key, _, _ in request.updates]
        scores = score_updates(
            updates,
            result.delta,
            [v.weight for v in ordered],
            [v.rejected for v in ordered],
            request.flag_params,
            self.threads,
        )
        verdicts = tuple(
            UpdateVerdict(
                v.key,
                v.accepted,
                v.clipped,
                v.rejected,
                v.weight,
                v.score,
                s.flags | (FLAG_OVER_NORM if v.key in over else 0),
                s.agreement,
                s.contribution,
            )
            for v, s in zip(ordered, scores, strict=True)
        )
        self.seconds += time.perf_counter() - start
        return AggregationOutcome(global_hash, state_hash, verdicts)


def over_norm(updates: list[ClientDelta], max_norm: int, threads: int = 1) -> set[bytes]:
    """Keys of the updates whose exact norm exceeds `max_norm` (the differential-privacy bound, in
    2**-16 units; 0: no bound). Payloads are in 2**-FRAC_BITS units, so both sides are compared
    squared in 2**-(2 FRAC_BITS) units: exact integers, every validator refuses the same ones."""
    if max_norm <= 0 or not updates:
        return set()
    norms = exact_sqnorms(make_batch(updates), threads)
    bound = max_norm << (FRAC_BITS - 16)
    return {u.key for u, sq in zip(updates, norms, strict=True) if sq > bound * bound}


class PayloadChecker:
    """The `payload_check` precompile: which rule a pinned payload breaks, judged against the
    layout of the chain's model (found from the current global model when first needed)."""

    def __init__(self, blobs: BlobStore, model_hash: Callable[[], bytes]) -> None:
        self.blobs = blobs
        self.model_hash = model_hash
        self._spec: TensorSpec | None = None

    def check(self, payload_hash: bytes) -> str:
        if self._spec is None:
            self._spec = TensorSpec.of(self.blobs.get(self.model_hash()))
        payload = self.blobs.get(payload_hash)  # BlobError: not available, block not executable
        try:
            validate_payload(payload, payload_hash, self._spec, self._spec.nbytes)
        except PayloadValidationError as exc:
            return exc.code
        return ""
