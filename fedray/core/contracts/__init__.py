"""Pure state-transition contracts, one module per domain; each registers its transaction kinds,
state sections and end-of-block hooks when imported."""
