"""Pruning and sparse-training algorithms: scores -> exact top-k -> masks.

* `METHODS`: sparse-training methods (`sparse_training.method`): 'static',
  'rigl', 'set', 'gmp', 'snip' — `Algorithm` subclasses run by the training hook.
* `CRITERIA`: IMP pruning criteria (`lottery.criterion`): 'magnitude'.

Register a new one with `@METHODS.register(name)` / `@CRITERIA.register`.
"""
from tf_tickets import blocks
from tf_tickets.algorithms.base import Algorithm
from tf_tickets.algorithms.base import DropFraction
from tf_tickets.algorithms.base import DynamicSparse
from tf_tickets.algorithms.base import MaskUpdate
from tf_tickets.algorithms.base import RunSteps
from tf_tickets.algorithms.base import UpdateSchedule
from tf_tickets.algorithms.dynamic import RigL
from tf_tickets.algorithms.dynamic import SET
from tf_tickets.algorithms.dynamic import SNIP
from tf_tickets.algorithms.dynamic import Static
from tf_tickets.algorithms.gmp import GMP
from tf_tickets.algorithms.imp import CRITERIA
from tf_tickets.algorithms.imp import Criterion
from tf_tickets.algorithms.imp import check_structure
from tf_tickets.algorithms.imp import compute_masks
from tf_tickets.algorithms.settings import GMPSettings
from tf_tickets.algorithms.settings import METHODS
from tf_tickets.algorithms.settings import SparseTrainingSettings


def make(cfg, sparsities, seed, run, shapes=None, gmp=None, units=None):
  """The algorithm `cfg.method` for these target sparsities (key ->
  sparsity), seed and run (`RunSteps`); with `cfg.block_size`, on the
  blocks of the weights of `shapes` (key -> shape, e.g.
  `masks.weight_shapes(model)`). `gmp` (a `GMPSettings`; default: its
  defaults) is the schedule of 'gmp'. `units` (`masks.unit_readers`: the
  weights whose units may be removed -> the weights that read them) is
  what `cfg.channel_sparsity` removes."""
  layouts = None
  if cfg.block_size is not None:
    if shapes is None:
      raise ValueError('sparse_training.block_size needs the weight shapes')
    layouts = blocks.layouts(shapes, cfg.block_size, sparsities)
  method = METHODS.get(cfg.method)
  extra = {'gmp': gmp} if method.name == 'gmp' else {}
  if cfg.channel_sparsity:
    extra['units'] = {k: (shapes[k], {r: shapes[r] for r in readers})
                      for k, readers in (units or {}).items()}
  return method(cfg, sparsities, seed, run, layouts, **extra)
