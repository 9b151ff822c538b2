"""Loading weights trained elsewhere into rnnlab params.

* :mod:`rnnlab.interop.torch`: PyTorch ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` state dicts (as numpy
  arrays or tensors; torch itself is never imported).
* :mod:`rnnlab.interop.flax`: Flax linen and NNX recurrent cells.

Example:
    >>> import numpy as np
    >>> from rnnlab import interop
    >>> sd = {"weight_ih_l0": np.zeros((3, 2), np.float32), "weight_hh_l0": np.zeros((3, 3), np.float32)}
    >>> interop.torch.from_torch_rnn(sd).input_kernel.shape
    (2, 3)
"""

from rnnlab.interop import flax, torch

__all__ = ["flax", "torch"]
