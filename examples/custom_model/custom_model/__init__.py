"""An example of a model, a data set and an aggregation rule of one's own, run by fedray through
import paths in `../config.yaml` (docs/extending.md): `model.py` (a small CNN with BatchNorm),
`data.py` (scikit-learn's digits with their own transform), `rules.py` (an integer mean)."""
