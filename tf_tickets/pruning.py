"""Algorithms applied to a wrapped model: IMP's pruning step and the
sparse-training target sparsities of its weights.

The algorithms themselves (`tf_tickets.algorithms`) work on numpy arrays;
these functions read the arrays from the model (`masks.get_masks`,
`get_weights`), call them, and write the masks back (`masks.set_masks`).
"""
import numpy as np

from tf_tickets import algorithms
from tf_tickets import distributions
from tf_tickets import masks as masks_lib
from tf_tickets.errors import ConfigError


def prune(model, fraction, scope='layerwise', fractions=None, skip=(),
          criterion='magnitude', block=None, structure=None):
  """Prunes `fraction` of the remaining weights with the smallest scores.

  Args:
    model: a wrapped model.
    fraction: fraction of the currently *remaining* weights to remove, in
      [0, 1).
    scope: 'layerwise' (each weight loses `fraction` of its remaining
      entries) or 'global' (`fraction` of all remaining entries of the pooled
      weights, smallest scores across layers).
    fractions: optional per-layer overrides, layer name or weight key ->
      fraction. Overridden weights are always pruned layerwise at their own
      rate (e.g. the LTH output layer at half rate) and stay out of the
      global pool.
    skip: layer names or weight keys never pruned.
    criterion: a name in CRITERIA ('magnitude').
    block: None or a block size (`tf_tickets.blocks`): the blocked weights
      lose whole blocks, scored by the root mean square of their entries'
      scores; the fractions count blocks. Global pruning with blocks needs
      every pooled weight blocked.
    structure: None (element masks), 'unit' or 'refill'
      (`tf_tickets.structure`): the weights of `masks.unit_keys` (all but
      the output layer's) lose whole units.

  Returns:
    dict key -> number of entries pruned.
  """
  entries = masks_lib.entries_of(model)
  overrides = masks_lib.resolve_names(fractions or {}, entries,
                                      'lottery.layer_fractions')
  skipped = set(masks_lib.resolve_names({s: None for s in skip}, entries,
                                        'lottery.unpruned_layers'))
  before = masks_lib.get_masks(model)
  after = algorithms.compute_masks(before, masks_lib.get_weights(model),
                        masks_lib.get_weights(model, 'initial'), fraction,
                        scope, overrides, skipped, criterion, block,
                        structure,
                        masks_lib.unit_keys(model) if structure else ())
  masks_lib.set_masks(model, after)
  return {k: int(np.count_nonzero(before[k]) - np.count_nonzero(after[k]))
          for k in before}


def prune_by_magnitude(model, fraction, scope='layerwise', fractions=None,
                       skip=(), block=None):
  """`prune` with the magnitude criterion (the library's IMP step)."""
  return prune(model, fraction, scope, fractions, skip, 'magnitude', block)


def target_sparsities(model, cfg):
  """Per-weight-key sparsities of a wrapped model from the distribution,
  the custom overrides and the dense first layer of `cfg`."""
  entries = masks_lib.entries_of(model)
  shapes = masks_lib.weight_shapes(model)
  custom = masks_lib.resolve_names(cfg.custom_sparsity, entries,
                                   'sparse_training.custom_sparsity')
  if cfg.dense_first_layer:
    custom.setdefault(next(iter(shapes)), 0.0)
  try:
    return distributions.compute(cfg.distribution, shapes, cfg.sparsity,
                                 custom=custom, power_scale=cfg.power_scale)
  except ConfigError as e:
    raise ConfigError('sparse_training', str(e)) from None


def initialize_masks(model, algorithm):
  """Sets the starting masks of `algorithm` on a wrapped model."""
  if algorithm.starts_dense:
    masks_lib.set_masks(model, {k: np.ones(s) for k, s in
                                masks_lib.weight_shapes(model).items()})
  else:
    masks_lib.init_masks(model, algorithm.sparsities, seed=algorithm.seed,
                         block=algorithm.cfg.block_size)
