"""The federation ring: what a run is made of, without Ray.

Everything a run derives from its config (`plan`), the client pools that train and sign
(`clients`), scripted governance (`governance_script`), evaluation and the centralized baseline
(`evaluate`), the run's outputs (`outputs`), the driver's policy (`driver`), and a whole federation in
one process (`inprocess`). `fedray/runtime` wraps these in Ray actors and wires them; tests and
experiments use them directly.
"""
