"""Test-session settings shared by tests/ and the doctests in nfestimators/."""

import torch

# Two pytest workers share two cores: one intra-op thread each avoids oversubscription,
# which slows small models by two orders of magnitude on such a machine.
torch.set_num_threads(1)
