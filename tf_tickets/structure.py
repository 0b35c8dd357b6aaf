"""Structured tickets: masks that keep or remove whole units.

A unit of a prunable weight is one slice along its last axis: a Dense
kernel's output column (a neuron), a convolution kernel's output channel.
A network whose removed units are empty can be rebuilt smaller and dense
(`tf_tickets.export.compact`), which every runtime runs faster; element
tickets spread over every unit and cannot (see docs/benchmarks.md).

`lottery.structure` chooses how a lottery level prunes a weight:

* None: element masks (the LTH paper);
* 'unit': the naive structured baseline, whole units by the L2 norm of
  their surviving scores (|w| for the magnitude criterion): each level
  removes round(fraction * alive units) units of each layer;
* 'refill': IMP-Refill (Chen et al., "Coarsening the Granularity: Towards
  Structurally Sparse Lottery Tickets", ICML 2022): the level's element
  pruning sets the layer's parameter budget; the units are ranked by the
  L1 norm of their surviving scores and the best are made fully dense
  until the budget is spent, the rest emptied. VITA-Group/Structure-LTH
  refills whole channels (so its count is only close to the budget); here
  the last unit is filled with its best entries up to the budget, so the
  count is exactly the element ticket's, and at most one unit per layer
  is partial. As in the reference, each level ranks the units afresh from
  its element pruning, so a level's units need not be a subset of the
  previous level's (refilled entries restart where the rewinding puts the
  survivors: the rewind point, or 0 with lottery.rewind 'none' / 'lr').

Sparse training removes units with `sparse_training.channel_sparsity`
(`remove_units`, the channel removal of Chase, Yin et al., NeurIPS 2023,
"Dynamic Sparsity Is Channel-Level Sparsity Learner"; see
`algorithms.DynamicSparse`).

Layers whose units cannot be removed (a model's output layer: its units are
the classes) stay element-wise; the caller names the structured weights.
Everything here works on numpy arrays and goes through `topk.select`.
"""
import dataclasses

import numpy as np

from tf_tickets import topk
from tf_tickets.errors import ConfigError

STRUCTURES = ('unit', 'refill')


def check(structure, setting='lottery.structure'):
  """None, 'unit' or 'refill'; anything else is a ConfigError."""
  if structure is None or structure in STRUCTURES:
    return structure
  raise ConfigError(setting, f'unknown structure {structure!r}; valid: None '
                    "(element masks), 'unit' (whole units by their norm) or "
                    "'refill' (IMP-Refill, Chen et al. 2022)")


def columns(array):
  """`array` as (entries per unit, units): the unit axis is the last."""
  array = np.asarray(array)
  return array.reshape(-1, array.shape[-1]) if array.ndim > 1 else (
      array.reshape(1, -1))


def alive_units(mask):
  """Per unit: True when any of its entries is active."""
  return columns(mask).any(axis=0)


def unit_norms(score, mask, order):
  """The `order` norm (1 or 2) of each unit's scores over its active
  entries."""
  s = np.abs(columns(score)) * (columns(mask) > 0)
  return (s.sum(axis=0) if order == 1 else np.sqrt((s * s).sum(axis=0)))


def prune_units(mask, score, fraction):
  """'unit': `mask` without round(fraction * alive units) of its alive
  units, those of the smallest L2 norm of `score` (ties: lowest index)."""
  alive = alive_units(mask)
  count = np.count_nonzero(alive)  # a layer keeps at least one unit
  drop = topk.select(unit_norms(score, mask, 2), alive,
                     min(int(round(fraction * count)), count - 1))
  out = columns(mask).astype(bool)
  out[:, drop] = False
  return out.reshape(np.shape(mask))


def fill(order, score, shape, count):
  """A mask of `shape` with exactly `count` active entries: the units in
  `order` made fully dense one after the other, the first that does not
  fit entirely filled with its largest `score` entries."""
  per_unit = columns(np.zeros(shape)).shape[0]
  full, rest = divmod(int(count), per_unit)
  out = np.zeros(columns(np.zeros(shape, bool)).shape, bool)
  out[:, order[:full]] = True
  if rest:
    unit = order[full]
    out[topk.select(np.abs(columns(score)[:, unit]), np.ones(per_unit, bool),
                    rest, largest=True), unit] = True
  return out.reshape(shape)


def refill(pruned, score):
  """'refill': from the element-pruned mask `pruned`, the units ranked by
  the L1 norm of their surviving `score`, refilled densely to exactly the
  count of `pruned` (the level's budget)."""
  norms = unit_norms(score, pruned, 1)
  order = np.lexsort((np.arange(norms.size), -norms))  # best first
  return fill(order, score, np.shape(pruned), np.count_nonzero(pruned))


def random_fill(shape, count, rng):
  """A random structured mask of `shape` with exactly `count` entries:
  random units made dense, the last one partly (random entries)."""
  units = columns(np.zeros(shape, bool)).shape[1]
  return fill(rng.permutation(units), rng.random(shape), shape, count)


def mean_magnitude(weight, mask):
  """Per unit: Chase's unmasked mean magnitude (UMM), the sum of |w| over
  the unit's active entries divided by the unit's number of entries (the
  reference's `mag_wise` score: the mean |w| over the whole masked
  channel)."""
  return unit_norms(weight, mask, 1) / columns(mask).shape[0]


def remove_units(scores, alive, minimum, count):
  """Chase's channel removal over several weights together: of the alive
  units (key -> per-unit `scores` and boolean `alive`), the `count` of
  smallest score (ties: weight order, then unit index), no weight left
  with fewer than `minimum[key]` alive units (so fewer are removed when
  the minimums bind). Returns key -> flat indices of its removed units."""
  keys = list(scores)
  candidates = sorted(
      (float(scores[k][u]), i, int(u)) for i, k in enumerate(keys)
      for u in np.flatnonzero(alive[k]))
  room = [int(np.count_nonzero(alive[k])) - int(minimum[k]) for k in keys]
  out = {k: [] for k in keys}
  for _, i, unit in candidates:
    if count <= 0:
      break
    if room[i] > 0:
      out[keys[i]].append(unit)
      room[i] -= 1
      count -= 1
  return {k: np.asarray(v, np.int64) for k, v in out.items()}


def entries_of_units(shape, units):
  """A flat boolean array over the entries of a weight of `shape`: True
  at the entries of the units flagged in `units` (per unit, bool)."""
  per_unit = columns(np.zeros(shape, bool)).shape[0]
  return np.broadcast_to(np.asarray(units, bool),
                         (per_unit, np.size(units))).reshape(-1)


def entries_reading(shape, units):
  """A flat boolean array over the entries of a reader kernel of `shape`
  (Dense (in, out), Conv2D (kh, kw, in, out)): True at the entries whose
  input i reads a unit flagged in `units` (unit i % len(units): a
  Flatten of channels-last maps feature i to channel i % channels)."""
  inputs = shape[-2]
  rows = np.asarray(units, bool)[np.arange(inputs) % np.size(units)]
  return np.broadcast_to(rows[None, :, None],
                         (int(np.prod(shape[:-2])), inputs, shape[-1])
                         ).reshape(-1)


@dataclasses.dataclass(frozen=True)
class ChannelSchedule:
  """How many units are alive after each mask update under
  `sparse_training.channel_sparsity` S_c: of the U units of the weights
  whose units may be removed, U - round(S(g) * U), with Chase's cubic
  S(g) = S_c * (1 - (1 - p)^3), p = (g - first) / (last - first) over the
  updates' global steps g (p = 1 when there is one update; the reference
  counts p from step 0 to its own end, `stop_gmp_epochs`); `minimum`:
  key -> the units a layer keeps at least, Chase's
  max(1, int(units * (1 - S_c) * beta))."""
  sparsity: float
  total: int
  first: int
  last: int
  minimum: dict

  @classmethod
  def of(cls, sparsity, min_fraction, counts, first, last):
    """For units per weight `counts` (key -> units), beta `min_fraction`
    and the global steps of the first and the last update."""
    return cls(sparsity, sum(counts.values()), first, last,
               {k: max(1, int(n * (1 - sparsity) * min_fraction))
                for k, n in counts.items()})

  def alive_target(self, step):
    """The units alive after the update of `step` (1-based)."""
    span = self.last - self.first
    p = min(max((step - 1 - self.first) / span, 0.0), 1.0) if span else 1.0
    removed = self.sparsity * (1.0 - (1.0 - p) ** 3)
    return self.total - int(round(removed * self.total))
