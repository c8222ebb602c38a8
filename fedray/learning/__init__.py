"""Federated learning building blocks: datasets, partitioners, models, local training, attacks."""
