"""Static sparse training, RigL and SET.

* 'static': the random initial mask, never changed (the sparse baseline).
* 'rigl' (Evci et al., ICML 2020, "Rigging the Lottery"): grow where the
  magnitude of the *dense* gradient is largest (dense gradients are fetched
  only on update steps).
* 'set' (Mocanu et al. 2018): grow at random, seeded by (seed, step, layer),
  so deterministic.
* 'snip' (Lee et al., ICLR 2019): prune once at initialisation by
  connection sensitivity |g * w|, then train static.
"""
import numpy as np

from tf_tickets import topk
from tf_tickets.algorithms.base import Algorithm
from tf_tickets.algorithms.base import DynamicSparse
from tf_tickets.algorithms.base import MaskUpdate
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


@METHODS.register('snip')
class SNIP(Algorithm):
  """SNIP (Lee et al., ICLR 2019): one-shot pruning at initialisation by
  connection sensitivity |g * w| on a batch, then static sparse training.

  The batch: `sparse_training.grow_batch_size` examples (default one
  training batch), fixed by the seed. Difference from the paper: the paper
  keeps the top-k sensitivities over all layers together; here each layer
  keeps its share given by `sparse_training.distribution` (the budget of
  every other method), so SNIP changes *which* connections, not how many
  per layer.
  """
  needs_gradients = True
  starts_dense = True
  prunes_at_start = True

  def compute(self, step, masks, weights, grads, lr_ratio=1.0):
    new_masks, stats = {}, {}
    for key, mask in masks.items():
      keep = int(round((1.0 - float(self.unit_sparsities[key])) * mask.size))
      scores = np.abs(grads[key] * weights[key])
      new = np.zeros(mask.size, bool)
      new[topk.select(scores, mask, keep, largest=True)] = True
      new_masks[key] = new
      stats[key] = dict(dropped=int(mask.sum()) - keep, grown=0, regrown=0,
                        active=keep)
    return MaskUpdate(new_masks, {}, stats, label='snip at initialisation')
