"""Iterative magnitude pruning: one pruning step of a lottery level.

`compute_masks(masks, weights, initial, fraction, ...)` is the IMP step on
arrays: it removes `fraction` of the remaining weights with the smallest
score, layerwise or globally, with per-layer overrides; `prune(model, ...)`
reads a wrapped model's arrays, resolves layer names and writes the masks
back.
The score is a pruning criterion (gin `lottery.criterion`); adding one is a
class and a registry line:

    @CRITERIA.register('my_criterion')
    class MyCriterion(Criterion):
      def scores(self, weight, initial):
        ...
"""
import numpy as np

from tf_tickets import blocks
from tf_tickets import settings
from tf_tickets import structure as structure_lib
from tf_tickets import topk
from tf_tickets.errors import ConfigError
from tf_tickets.errors import check_choice
from tf_tickets.errors import check_range

SCOPES = ('layerwise', 'global')

CRITERIA = settings.Registry('lottery.criterion')


class Criterion:
  """Scores the entries of a weight; the lowest are pruned first."""
  name = None

  def scores(self, weight, initial):
    """Per-entry scores (same shape as `weight`), from the trained weight
    and its theta_0."""
    raise NotImplementedError


@CRITERIA.register('magnitude')
class Magnitude(Criterion):
  """|w|: the LTH paper's criterion."""

  def scores(self, weight, initial):
    del initial
    return np.abs(weight)


def compute_masks(masks, weights, initial, fraction, scope='layerwise',
                  fractions=None, skip=(), criterion='magnitude', block=None,
                  structure=None, structured=()):
  """One IMP step on arrays: the new masks (float32 0/1, the shapes of
  `masks`) from key -> mask, trained weight and theta_0 arrays.
  `fractions` (key -> fraction), `skip` and `structured` (the keys whose
  units may be removed, for `structure`) name weight keys; the other
  arguments are `prune`'s."""
  check_range('lottery.pruning_fraction', fraction)
  check_choice('lottery.scope', scope, SCOPES)
  check_structure(structure, scope, block)
  overrides = dict(fractions or {})
  for k, f in overrides.items():
    check_range(f'lottery.layer_fractions[{k!r}]', f)
  skipped = set(skip)
  score_fn = CRITERIA.get(criterion)().scores
  shapes = {k: tuple(m.shape) for k, m in masks.items()}
  layouts = {k: layout for k, layout in blocks.layouts(shapes, block).items()
             if k not in skipped and overrides.get(k, fraction) > 0}
  # The units pruned: entries, or whole blocks of the blocked weights.
  active, scores = {}, {}
  for k, mask in masks.items():
    flat = np.asarray(mask).reshape(-1) > 0
    score = score_fn(weights[k], initial[k]).reshape(-1)
    layout = layouts.get(k)
    active[k] = layout.active(flat) if layout else flat.copy()
    scores[k] = layout.scores(score) if layout else score

  def count(f, mask):
    return int(round(f * np.count_nonzero(mask)))

  for k in masks:
    if k not in skipped and (k in overrides or scope == 'layerwise'):
      topk.drop_lowest(active[k], scores[k],
                            count(overrides.get(k, fraction), active[k]))
  pool = [k for k in masks if k not in skipped and k not in overrides]
  if scope == 'global' and pool:
    if layouts and any(k not in layouts for k in pool):
      raise ConfigError('lottery.block_size', 'global pruning with blocks '
                        'needs every pooled weight blocked (2-D, at least '
                        f'{block} entries); not blocked: '
                        f'{[k for k in pool if k not in layouts]}')
    flat_m = np.concatenate([active[k] for k in pool])
    flat_s = np.concatenate([scores[k] for k in pool])
    topk.drop_lowest(flat_m, flat_s, count(fraction, flat_m))
    offset = 0
    for k in pool:
      n = active[k].size
      active[k] = flat_m[offset:offset + n]
      offset += n
  for k, layout in layouts.items():
    active[k] = layout.expand(active[k])
  active = {k: m.reshape(shapes[k]) for k, m in active.items()}
  for k in set(structured) - skipped if structure else ():
    if overrides.get(k, fraction) == 0:
      continue
    score = scores[k].reshape(shapes[k])
    if structure == 'unit':
      active[k] = structure_lib.prune_units(masks[k], score,
                                            overrides.get(k, fraction))
    else:
      active[k] = structure_lib.refill(active[k], score)
  return {k: m.astype(np.float32) for k, m in active.items()}


def check_structure(structure, scope, block):
  """`lottery.structure` against the scope and block settings."""
  structure_lib.check(structure)
  if structure and block:
    raise ConfigError('lottery.structure', f'{structure!r} removes whole '
                      'units; it cannot be combined with lottery.block_size '
                      f'{block!r} (set one of them)')
  if structure == 'unit' and scope != 'layerwise':
    raise ConfigError('lottery.structure', "'unit' prunes each layer's "
                      "units by their norm: it needs lottery.scope = "
                      "'layerwise' ('refill' works with 'global')")
