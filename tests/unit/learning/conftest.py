"""One torch thread: the machines are shared, and results must not depend on thread scheduling."""

import torch

torch.set_num_threads(1)
