"""The ledger application: binds the core transition, consensus, aggregation and storage (no Ray)."""
