"""Fixtures for the consensus tests; the helpers live in `consensus_harness`."""

from __future__ import annotations

import pytest
from consensus_harness import Harness, proposer_key

from fedray.consensus.messages import Start


@pytest.fixture
def harness() -> Harness:
    """A started engine of the validator that proposes round 3 (others propose rounds 0 to 2)."""
    h = Harness(proposer_key(3))
    h.feed(Start())
    return h
