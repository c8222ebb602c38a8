"""How an ingress reaches its validator: the five calls it makes (`admit_checked`,
`submit_evidence`, and the three read-only views it answers pools with), over Ray when the ingress
is an actor of its own (`RemoteValidator`, `runtime.ingress=actor`), or directly on the
`ValidatorNode` whose process hosts it (`LocalValidator`, `runtime.ingress=validator`, the
default: no actor process, no hop, no copy of the admitted transactions).

Both go through the validator's own gated methods with the ingress capability, so a hosted ingress
is checked exactly as a remote one is (docs/security.md). A validator a remote ingress cannot
reach refuses the batch as `validator_unavailable`; evidence it cannot hand over is dropped (the
client's delivery stays refused either way).

Deliberately ignored: retrying an unreachable validator (the pool resubmits to the other ingresses).
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

from fedray.core.contracts.slashing import PayloadEvidence
from fedray.node.views import RoundInfo

UNAVAILABLE = {"code": "validator_unavailable"}


class ValidatorLink(Protocol):
    async def admit_checked(self, raws: list[bytes]) -> list[dict[str, Any]]:
        """The refusals of the mempool (one dict with a `code` each) for checked transactions."""
        ...

    async def submit_evidence(self, proof: PayloadEvidence) -> None: ...

    async def round_info(self, results_after: int) -> RoundInfo: ...

    async def account_nonces(self, keys: list[bytes]) -> dict[bytes, int]: ...

    async def next_nonces(self, keys: list[bytes]) -> dict[bytes, int]: ...


class RemoteValidator:
    """The validator's Ray actor handle, with its ingress capability."""

    def __init__(self, handle: Any, capability: bytes) -> None:
        self.handle = handle
        self._capability = capability  # never returned to a caller

    async def admit_checked(self, raws: list[bytes]) -> list[dict[str, Any]]:
        import ray

        try:
            refused: list[dict[str, Any]] = await self.handle.admit_checked.remote(
                self._capability, raws
            )
        except ray.exceptions.RayError:
            return [UNAVAILABLE] * len(raws)
        return refused

    async def submit_evidence(self, proof: PayloadEvidence) -> None:
        import ray

        with contextlib.suppress(ray.exceptions.RayError):
            await self.handle.submit_evidence.remote(self._capability, proof)

    async def round_info(self, results_after: int) -> RoundInfo:
        info: RoundInfo = await self.handle.round_info.remote(results_after)
        return info

    async def account_nonces(self, keys: list[bytes]) -> dict[bytes, int]:
        nonces: dict[bytes, int] = await self.handle.account_nonces.remote(keys)
        return nonces

    async def next_nonces(self, keys: list[bytes]) -> dict[bytes, int]:
        nonces: dict[bytes, int] = await self.handle.next_nonces.remote(keys)
        return nonces


class LocalValidator:
    """The `ValidatorNode` in this process (its event loop is the ingress's), with its ingress
    capability: the same gated methods, called without Ray."""

    def __init__(self, node: Any, capability: bytes) -> None:
        self.node = node
        self._capability = capability

    async def admit_checked(self, raws: list[bytes]) -> list[dict[str, Any]]:
        if self.node.closed:  # shut down by its operator while this batch was judged
            return [UNAVAILABLE] * len(raws)
        refused: list[dict[str, Any]] = await self.node.admit_checked(self._capability, raws)
        return refused

    async def submit_evidence(self, proof: PayloadEvidence) -> None:
        if not self.node.closed:  # as a remote ingress drops it when its validator is gone
            await self.node.submit_evidence(self._capability, proof)

    async def round_info(self, results_after: int) -> RoundInfo:
        info: RoundInfo = await self.node.round_info(results_after)
        return info

    async def account_nonces(self, keys: list[bytes]) -> dict[bytes, int]:
        nonces: dict[bytes, int] = await self.node.account_nonces(keys)
        return nonces

    async def next_nonces(self, keys: list[bytes]) -> dict[bytes, int]:
        nonces: dict[bytes, int] = await self.node.next_nonces(keys)
        return nonces
