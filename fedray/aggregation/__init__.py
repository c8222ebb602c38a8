"""Deterministic robust aggregation strategies over fixed-point updates (see base.py)."""
