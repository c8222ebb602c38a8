"""The BFT consensus engine (Tendermint), pure and Ray-free, and its simulator.

- `engine`: `step(state, event) -> (state, outbox)`, the algorithm itself.
- `messages`: network messages, input events and outbox items.
- `state`: the engine state value, its configuration (timeouts) and what it gossips.
- `proposer`: weighted round-robin proposer selection (CometBFT proposer priority).
- `votes`: vote sets, power tallies, conflicts.
- `signer`: signer safety (never sign twice for a slot, keep the lock across restarts).
- `sync`: catch-up with certified blocks.
- `app`: the Application protocol (prepare / process / finalize / commit).
- `driver`: a reference shell that applies the outbox to an application, store and transport.
- `sim`, `sim_net`, `sim_byzantine`, `sim_app`: the adversarial simulator.

It knows blocks, votes and certificates from `fedray.core`, and nothing about ledgers' contents or
federated learning.
"""
