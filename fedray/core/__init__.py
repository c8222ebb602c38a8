"""The deterministic ledger: canonical encoding, Ed25519 signing, transactions, blocks, state and the
state transition. Imports only the standard library, PyNaCl and cryptography: no Ray, torch, numpy,
clock or unseeded randomness, and no floats in anything hashed or signed.

Importing this package registers the built-in transaction kinds and state sections.
"""

from fedray.core import beacon as beacon
from fedray.core import evidence as evidence
from fedray.core.contracts import accounts as accounts
from fedray.core.contracts import economy as economy
from fedray.core.contracts import governance as governance
from fedray.core.contracts import incentives as incentives
from fedray.core.contracts import privacy as privacy
from fedray.core.contracts import rounds as rounds
from fedray.core.contracts import slashing as slashing
from fedray.core.contracts import unbonding as unbonding
