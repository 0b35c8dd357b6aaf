"""The interface of sparse-training algorithms and their schedules.

An `Algorithm` decides how masks change during training. It works on plain
numpy arrays, one entry per prunable weight key (flat boolean masks, flat
weights, flat dense gradients), and returns a `MaskUpdate`; the training
hook (`tf_tickets.training.MaskHook`) reads the arrays from the model,
calls it at step boundaries and writes the result back. So an algorithm is
testable on hand-written arrays and knows nothing of TensorFlow.

Every selection goes through the one exact top-k, `topk.select`.

`DynamicSparse` is the template of drop-and-grow methods at a fixed number
of active weights: a method only says how it scores (RigL and SET differ in
`grow_scores` alone). Adding a method is one class plus one registry line:

    @METHODS.register('my_method')
    class MyMethod(DynamicSparse):
      def grow_scores(self, key, index, step, weight, grad):
        ...
"""
import dataclasses
import math

import numpy as np

from tf_tickets import steps
from tf_tickets import structure
from tf_tickets import topk
from tf_tickets.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class DropFraction:
  """f(t): the fraction of each layer's active weights replaced at step t.

  With g = t - 1 the global step (steps completed before step t, as the
  reference counts) and p = clip((g - begin) / (end - begin), 0, 1):
  'cosine'   alpha / 2 * (1 + cos(pi * p))   (the RigL default)
  'constant' alpha
  'lr'       alpha * lr(t) / base learning rate       (warmup included)
  So the first update, at g = begin, replaces alpha (as rigl's TF1 code,
  whose cosine decays over global_step - begin_step).
  """
  alpha: float
  decay: str
  end_step: int
  begin_step: int = 0

  def __call__(self, step, lr_ratio=1.0):
    """f at `step`; `lr_ratio` = lr(step) / base rate (used by 'lr')."""
    if self.decay == 'cosine':
      span = max(self.end_step - self.begin_step, 1)
      t = min(max(step - 1 - self.begin_step, 0), span) / span
      return self.alpha / 2.0 * (1.0 + math.cos(math.pi * t))
    if self.decay == 'lr':
      return self.alpha * float(lr_ratio)
    return self.alpha


@dataclasses.dataclass(frozen=True)
class UpdateSchedule:
  """Mask updates at steps t (1-based) whose global step g = t - 1 (steps
  completed before it) is g = begin + k * every, k >= 0, g < end: rigl's
  `maskupdate_begin_step` / jaxpruner's `update_start_step` phase."""
  every: int
  end: int
  begin: int = 0

  def __call__(self, step):
    g = step - 1
    return (self.begin <= g < self.end
            and (g - self.begin) % self.every == 0)

  def last(self):
    """The global step g of the last update."""
    return self.begin + (self.end - 1 - self.begin) // self.every * self.every

  def next(self, step):
    """The first update step after `step`, or None."""
    k = max(-(-(step - self.begin) // self.every), 0)
    g = self.begin + k * self.every
    return g + 1 if g < self.end else None


@dataclasses.dataclass(frozen=True)
class RunSteps:
  """What an algorithm needs to know of the run to resolve its steps."""
  total: int
  steps_per_epoch: int
  multiplier: float = 1.0

  def resolve(self, value, setting):
    """A step setting (fraction of training or steps, scaled)."""
    return steps.resolve(value, setting, self.steps_per_epoch, self.total,
                         self.multiplier, fraction=True)


@dataclasses.dataclass
class MaskUpdate:
  """What one update did: new flat masks (changed keys only), newly grown
  positions per key, per-key stats (dropped, grown, regrown, active, ...),
  and a label for the log line."""
  masks: dict
  grown: dict
  stats: dict
  drop_fraction: float = None
  label: str = None


class Algorithm:
  """A sparse-training method (see the module docstring).

  Immutable once built: everything it needs of the run (`RunSteps`) is
  resolved in the constructor, and it keeps nothing between updates (what
  a run has done so far is the masks themselves plus the training hook's
  checkpointed bookkeeping). So `update` is a function of the step and the
  arrays it is given.

  Attributes set by subclasses: `needs_gradients` (dense gradients of the
  step's batch at update steps), `replaces_step` (with
  `sparse_training.skip_update_on_mask_steps` the update replaces the
  weight update of its step), `tracks_growth` (report grown-connection
  survival), `starts_dense` (start from all-ones masks instead of random
  masks with the target sparsities), `uses_learning_rate` (`update` reads
  `lr_ratio`; otherwise it gets 1.0).

  Blocks (`sparse_training.block_size`) are a parameter, `layouts` (key
  -> `blocks.Layout`): a method then sees each block of a blocked weight
  as one unit (its mask bit is "the block is active", its weight and
  gradient the root mean square of the block's, so RigL drops the blocks
  of smallest L2 norm and grows those of largest gradient norm), its
  target sparsities are whole-block counts (`unit_sparsities`), and its
  update is expanded back to entries, with per-key counts (dropped, grown,
  regrown, active) in entries. Unblocked weights stay element-wise.

  Units (`units`, key -> (shape, {reader key: shape}) of the weights
  whose units may be removed and the weights that read them,
  `masks.unit_readers`) are what `sparse_training.channel_sparsity`
  removes; only methods with `removes_units` (drop-and-grow) get them.
  """
  name = None  # set by the registry
  needs_gradients = False
  replaces_step = False  # the update replaces the step's weight update
  prunes_at_start = False  # one update (step 0) before training, on a batch
  tracks_growth = False
  starts_dense = False
  uses_learning_rate = False  # `update` reads lr_ratio
  removes_units = False  # takes sparse_training.channel_sparsity

  def __init__(self, cfg, sparsities, seed, run, layouts=None, units=None):
    """cfg: `SparseTrainingSettings`; sparsities: key -> target sparsity
    (of entries); seed: the run's mask seed; run: `RunSteps`; layouts: key
    -> `blocks.Layout` of the blocked weights; units: key -> (shape,
    {reader key: shape}) of the weights whose units may be removed."""
    self.cfg, self.sparsities, self.seed = cfg, dict(sparsities), int(seed)
    self.run, self.layouts = run, dict(layouts or {})
    self.units = {k: (tuple(shape), dict(readers))
                  for k, (shape, readers) in (units or {}).items()}
    if cfg.channel_sparsity and not self.units:
      raise ConfigError('sparse_training.channel_sparsity', 'the model has '
                        'no layer whose units can be removed (Dense or '
                        'Conv2D layers that do not feed an output)')
    self.unit_sparsities = {
        k: self.layouts[k].block_sparsity(s) if k in self.layouts else s
        for k, s in self.sparsities.items()}

  def wants_update(self, step):
    """True if `update` runs after step `step`."""
    del step
    return False

  def next_update(self, step):
    """The first step after `step` with `wants_update`, or None (said
    directly: the loop plans its compiled calls up to it)."""
    del step
    return None

  def update(self, step, masks, weights, grads, lr_ratio=1.0):
    """A `MaskUpdate` (or None) from key -> flat arrays of entries (masks
    are bool): `compute` on the units (entries, or blocks)."""
    update = self.compute(step, self._units(masks, 'active'),
                          self._units(weights, 'scores'),
                          self._units(grads, 'scores'), lr_ratio)
    if update is None or not self.layouts:
      return update
    return MaskUpdate(
        {k: self._expand(k, m) for k, m in update.masks.items()},
        {k: self._expand(k, g) for k, g in update.grown.items()},
        {k: {name: v * self._elems(k) if name in _COUNTS else v
             for name, v in s.items()} for k, s in update.stats.items()},
        update.drop_fraction, update.label)

  def compute(self, step, masks, weights, grads, lr_ratio=1.0):
    """`update` on units: key -> flat arrays with one entry per unit."""
    raise NotImplementedError

  def _units(self, arrays, reduce):
    if arrays is None or not self.layouts:
      return arrays
    return {k: getattr(self.layouts[k], reduce)(v) if k in self.layouts
            else v for k, v in arrays.items()}

  def _expand(self, key, flat):
    return self.layouts[key].expand(flat) if key in self.layouts else flat

  def _elems(self, key):
    return self.layouts[key].elems if key in self.layouts else 1

  def result(self):
    """Fields this method adds to the results.csv row."""
    return {}

  def training_flops(self, sparse, dense):
    """Training FLOPs per example (RigL paper, Appendix H) from the
    inference FLOPs per weight key of the final network (`sparse`) and of
    the dense one (`dense`)."""
    del dense
    return 3 * sum(sparse.values())


_COUNTS = ('dropped', 'grown', 'regrown', 'active')  # scaled by block size


class DynamicSparse(Algorithm):
  """Drop-and-grow at a fixed number of active weights (RigL/SET template).

  At each update step t, in every layer with 0 < active < size: drop the
  k = floor(f(t) * active) active weights with the smallest `drop_scores`
  (as the RigL TF1 code and rigl_tf2; jaxpruner instead keeps the top
  round(density * (1 - f(t)) * size) by its top-k of a sparsity, so its k
  can be one more or less), grow the k connections
  with the largest `grow_scores` among those inactive after the drop (a
  just-dropped connection may be regrown; it is then treated as never
  dropped: only newly activated connections start at zero).

  With `sparse_training.channel_sparsity` S_c > 0 (Chase), each update
  first removes whole units (`structure.ChannelSchedule`, `remove_units`)
  and frees their columns and the rows of the layers that read them
  (`masks.unit_readers`); a layer then drops k = floor(f(t) * its
  remaining active weights) and grows k plus the entries it freed, in its
  allowed entries only (not in removed units, not reading one), an alive
  unit emptied by the drop first (its best entry), so the alive units
  are exactly the schedule's. Units with no active entry stay removed.
  """
  tracks_growth = True
  replaces_step = True
  removes_units = True

  def drop_scores(self, key, index, step, weight, grad):
    """Per-entry score; the active entries with the SMALLEST are dropped."""
    del key, index, step, grad
    return np.abs(weight)

  def grow_scores(self, key, index, step, weight, grad):
    """Per-entry score; the candidates with the LARGEST are grown."""
    raise NotImplementedError

  def __init__(self, cfg, sparsities, seed, run, layouts=None, units=None):
    super().__init__(cfg, sparsities, seed, run, layouts, units)
    every = steps.resolve(cfg.update_every, 'sparse_training.update_every',
                          run.steps_per_epoch)
    if every < 1:
      raise ConfigError('sparse_training.update_every',
                        'must be at least 1 step')
    end = run.resolve(cfg.end_step, 'sparse_training.end_step')
    if end > run.total:
      raise ConfigError(
          'sparse_training.end_step', f'{cfg.end_step!r} is step {end}, '
          f'after the end of training ({run.total} steps)')
    begin = run.resolve(cfg.begin_step, 'sparse_training.begin_step')
    if begin >= end:
      raise ConfigError(
          'sparse_training.begin_step', f'{cfg.begin_step!r} is step '
          f'{begin}, not before sparse_training.end_step (step {end})')
    self.schedule = UpdateSchedule(every, end, begin)
    self.drop_fraction = DropFraction(cfg.drop_fraction,
                                      cfg.drop_fraction_decay, end, begin)
    self.uses_learning_rate = (type(self).uses_learning_rate
                               or cfg.drop_fraction_decay == 'lr')
    self.channels = structure.ChannelSchedule.of(
        cfg.channel_sparsity, cfg.channel_min_fraction,
        {k: shape[-1] for k, (shape, _) in self.units.items()},
        begin, self.schedule.last()) if cfg.channel_sparsity else None

  def wants_update(self, step):
    return self.schedule(step)

  def next_update(self, step):
    return self.schedule.next(step)

  def compute(self, step, masks, weights, grads, lr_ratio=1.0):
    f = self.drop_fraction(step, lr_ratio)
    gone, unit_stats = self._remove_units(step, masks, weights)
    new_masks, grown, stats = {}, {}, {}
    for index, (key, mask) in enumerate(masks.items()):
      active = int(np.count_nonzero(mask))
      allowed = ~gone[key] if key in gone else np.ones(mask.size, bool)
      after = mask & allowed
      rest, room = int(np.count_nonzero(after)), int(np.count_nonzero(allowed))
      k = int(math.floor(f * rest)) if 0 < rest < room else 0
      freed = active - rest  # the entries of removed units, regrown
      stats[key] = dict(dropped=k + freed, grown=k + freed, regrown=0,
                        active=active, drop_fraction=f,
                        **unit_stats.get(key, {}))
      if k + freed == 0:
        continue
      weight = weights[key]
      grad = grads.get(key) if grads else None
      topk.drop_lowest(
          after, self.drop_scores(key, index, step, weight, grad), k)
      scores = self.grow_scores(key, index, step, weight, grad)
      grow = self._grow(key, scores, after, ~after & allowed, k + freed)
      after[grow] = True
      positions = np.zeros(mask.size, bool)
      positions[grow] = True
      stats[key].update(grown=int(grow.size),
                        regrown=int(np.count_nonzero(mask[grow])))
      new_masks[key] = after
      grown[key] = positions
    return MaskUpdate(new_masks, grown, stats, drop_fraction=f)

  def _grow(self, key, scores, after, candidates, count):
    """The `count` candidates of largest score; with channel sparsity,
    first the best candidate of each alive unit the drop emptied."""
    first = np.zeros(0, np.int64)
    if self.channels is not None and key in self.units:
      shape = self.units[key][0]
      cols = structure.columns(candidates.reshape(shape))
      empty = ~structure.alive_units(after.reshape(shape)) & cols.any(0)
      flat = np.arange(candidates.size).reshape(cols.shape)
      first = np.array([
          flat[topk.select(structure.columns(scores.reshape(shape))[:, u],
                           cols[:, u], 1, largest=True)[0], u]
          for u in np.flatnonzero(empty)], np.int64)
    rest = candidates.copy()
    rest[first] = False
    return np.concatenate([first, topk.select(
        scores, rest, count - first.size, largest=True)])

  def _remove_units(self, step, masks, weights):
    """Chase's channel removal at `step`: (key -> flat bool of the entries
    of removed units, old and new; key -> unit stats)."""
    if self.channels is None:
      return {}, {}
    alive, scores = {}, {}
    for key, (shape, _) in self.units.items():
      mask = masks[key].reshape(shape)
      alive[key] = structure.alive_units(mask)
      scores[key] = structure.mean_magnitude(weights[key].reshape(shape),
                                             mask)
    now = sum(int(np.count_nonzero(a)) for a in alive.values())
    removed = structure.remove_units(
        scores, alive, self.channels.minimum,
        now - self.channels.alive_target(step))
    gone, stats = {}, {}
    for key, (shape, readers) in self.units.items():
      alive[key][removed[key]] = False
      gone[key] = gone.get(key, False) | structure.entries_of_units(
          shape, ~alive[key])
      for reader, reader_shape in readers.items():
        if reader_shape[-2] % shape[-1] == 0:
          gone[reader] = gone.get(reader, False) | structure.entries_reading(
              reader_shape, ~alive[key])
      stats[key] = dict(units_removed=int(removed[key].size),
                        units_alive=int(np.count_nonzero(alive[key])))
    return gone, stats

  def training_flops(self, sparse, dense):
    f_s, f_d = sum(sparse.values()), sum(dense.values())
    if not self.needs_gradients:
      return 3 * f_s  # SET: no dense gradient
    every = self.schedule.every
    return (3 * f_s * every + 2 * f_s + f_d) / (every + 1)

  def result(self):
    extra = {} if self.channels is None else dict(
        channel_sparsity=self.cfg.channel_sparsity)
    return dict(extra, update_every=self.schedule.every,
                update_begin_step=self.schedule.begin,
                update_end_step=self.schedule.end,
                drop_fraction=self.cfg.drop_fraction,
                drop_fraction_decay=self.cfg.drop_fraction_decay)
