"""Durable storage: block store (SQLite), content-addressed tensor blobs (safetensors), key store,
signer state, run directories and metrics."""
