"""Static sparse training, RigL and SET.

* 'static': the random initial mask, never changed (the sparse baseline).
* 'rigl' (Evci et al., ICML 2020, "Rigging the Lottery"): grow where the
  magnitude of the *dense* gradient is largest (dense gradients are fetched
  only on update steps).
* 'set' (Mocanu et al. 2018): grow at random, seeded by (seed, step, layer),
  so deterministic.
"""
import numpy as np

from tf_tickets.algorithms.base import Algorithm
from tf_tickets.algorithms.base import DynamicSparse
from tf_tickets.algorithms.settings import METHODS

_SET_STREAM = 0x5E7  # separates SET's random streams from the mask seeds


@METHODS.register('static')
class Static(Algorithm):
  """Static sparse training: the initial mask is never changed."""


@METHODS.register('rigl')
class RigL(DynamicSparse):
  """RigL: grow where the dense gradient is largest."""
  needs_gradients = True

  def grow_scores(self, key, index, step, weight, grad):
    del key, index, step, weight
    return np.abs(grad)


@METHODS.register('set')
class SET(DynamicSparse):
  """SET: grow at random, seeded by (seed, step, layer)."""

  def grow_scores(self, key, index, step, weight, grad):
    del key, grad
    rng = np.random.default_rng([self.seed, _SET_STREAM, int(step),
                                 int(index)])
    return rng.random(weight.size)
