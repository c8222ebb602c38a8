"""Loaded by pytest before any test module: importing fedray first sets
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before any test module imports Ray, which reads it once at import
(see fedray/__init__.py), so every embedded Ray of the suite binds loopback only."""

import fedray  # noqa: F401
