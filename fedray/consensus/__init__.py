"""The BFT consensus engine (Tendermint), pure and Ray-free, its simulator and its mutation tests.

- `engine`: `step(state, event) -> (state, outbox)`, the algorithm itself: events in `engine`, the
  upon-rules in `rules`, the working state and actions in `work`.
- `messages`: network messages, input events and outbox items.
- `state`: the engine state value, its configuration (timeouts) and what it gossips.
- `proposer`: weighted round-robin proposer selection (CometBFT proposer priority).
- `votes`: vote sets, power tallies, conflicts.
- `signer`: signer safety (never sign twice for a slot, keep the lock across restarts).
- `sync`: catch-up with certified blocks.
- `app`: the Application protocol (prepare / process / finalize / commit).
- `driver`: a reference shell that applies the outbox to an application, store and transport.
- `sim`, `sim_net`, `sim_node`, `sim_byzantine`, `sim_app`, `sim_check`: the adversarial simulator.
- `mutants`: mutation testing of the engine against the simulator.

It knows blocks, votes and certificates from `fedray.core`, and nothing about ledgers' contents or
federated learning. See docs/consensus.md for what the simulator checks and what it found.
"""
