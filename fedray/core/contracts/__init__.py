"""Pure state-transition contracts, one module per domain; each registers its transaction kinds and
state sections when imported. Their end-of-block steps run in the order `end_block.py` lists."""
