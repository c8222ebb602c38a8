"""fedray: federated learning governed by a BFT blockchain, on Ray."""

__version__ = "0.1.0"
