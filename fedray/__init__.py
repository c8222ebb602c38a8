"""fedray: federated learning governed by a BFT blockchain, on Ray."""

import os

# Ray reads this once, when it is first imported, to pick its node address: 0 keeps an embedded
# instance on 127.0.0.1 (fedray.runtime.cluster). Set here, before any fedray module imports Ray.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

__version__ = "0.1.0"
