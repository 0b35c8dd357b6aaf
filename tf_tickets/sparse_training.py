"""Dynamic sparse training: RigL, SET, static sparse, gradual magnitude pruning.

`sparse_training.method` chooses the algorithm; all of them are hooks
(`training.Hook`) on the one training loop, and change masks only through
`TicketWrapper.set_masks`, in cross-replica context at step boundaries, so
every replica holds the same masks.

* 'rigl' (Evci et al., ICML 2020, "Rigging the Lottery"): every ΔT =
  `update_every` steps t with 0 < t < T_end (`end_step`), in every layer
  drop the k = round(f(t) * active) active weights with the smallest
  magnitude and grow the k connections with the largest magnitude of the
  *dense* gradient among those inactive after the drop (a just-dropped
  connection may be regrown). Dense gradients are fetched only on update
  steps.
* 'set' (Mocanu et al. 2018): the same, growing at random (seeded by
  (seed, step, layer), so deterministic).
* 'static': the random initial mask, never changed (the sparse baseline).
* 'gmp' (Zhu & Gupta 2017, "To prune, or not to prune"): start dense and
  prune by magnitude, per layer, to the sparsity of a
  `tfmot.sparsity.keras.PolynomialDecay` schedule (gin: `gmp.*`) whose
  final value is the layer's target sparsity.

RigL and SET differ only in their scores (`DynamicSparseHook.drop_score` /
`grow_score`). Grown connections start at exactly 0, and every optimizer
slot of the weight (momentum, Adam's m and v, ...) is zeroed at the grown
positions. The number of non-zeros of every layer is exactly constant;
selections are exact, ties broken by flat index (lowest first).

Drop fraction f(t), with alpha = `drop_fraction`:
  'cosine'   alpha / 2 * (1 + cos(pi * t / T_end))   (the RigL default)
  'constant' alpha
  'lr'       alpha * lr(t) / base learning rate       (lr(t): the schedule
             at step t, warmup included)

Initial masks: per-layer sparsities from `distribution` ('uniform', 'er',
'erk' with `power_scale`; see `tf_tickets.distributions`), `custom_sparsity`
overrides (layer name or weight key -> sparsity, out of the budget), and for
'uniform' the first prunable layer dense unless `dense_first_layer=False`
(as in the RigL paper); random masks with exact counts, seeded with `seed`
(default: `training.seed`). GMP uses the same sparsities as its final
targets and starts from all-ones masks.

Steps: `end_step` and `gmp.begin_step` / `gmp.end_step` take a float in
(0, 1] (a fraction of the training steps, which already include
`training.steps_multiplier`) or a step count (500, '500it', '2ep'), which is
scaled by `training.steps_multiplier` like the LR milestones. `update_every`
is not scaled (RigL keeps ΔT fixed in its M x runs).

Observability. Each update calls `Trainer.mask_updated(step, stats)` with,
per weight key: dropped, grown, regrown (grown connections that were just
dropped), active, churn, drop_fraction; and logs one line. *Churn* of a
layer is the fraction of the connections active at the start of the run
that are no longer active (|start \\ now| / |start|); the total churn pools
all layers. At the end the result (results.csv row) gets the method, churn,
'grown_survival' (the fraction of the connections grown at any update that
are active at the end), the number of updates and grown connections, and
the settings. The start masks, the set of grown connections and the
counters live in variables saved in every checkpoint (`Hook.state`), so a
resumed run reports and does exactly what an uninterrupted one does; the
starting weights are also written to `RUN/level_0/start/`.
"""

import dataclasses
import math
import os

from absl import logging
import gin
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from tf_tickets import distributions
from tf_tickets import experiment
from tf_tickets import pruning
from tf_tickets import training
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.errors import ConfigError
from tf_tickets.errors import check_choice
from tf_tickets.errors import check_range

METHODS = ('rigl', 'set', 'static', 'gmp')
DECAYS = ('cosine', 'constant', 'lr')
_SET_STREAM = 0x5E7  # separates SET's random streams from the mask seeds


# ------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SparseTrainingConfig:
  """What `sparse_training.*` binds; see `sparse_training_config`."""
  method: str = 'rigl'
  sparsity: float = 0.9
  distribution: str = 'erk'
  power_scale: float = 1.0
  custom_sparsity: dict = dataclasses.field(default_factory=dict)
  dense_first_layer: bool = False
  update_every: object = 100
  end_step: object = 0.75
  drop_fraction: float = 0.3
  drop_fraction_decay: str = 'cosine'
  seed: object = None


@dataclasses.dataclass(frozen=True)
class GMPConfig:
  """What `gmp.*` binds; see `gmp_config`."""
  begin_step: object = 0.125
  end_step: object = 0.75
  frequency: int = 100
  power: float = 3.0
  initial_sparsity: float = 0.0


def resolve_step(value, setting, total_steps, steps_per_epoch, multiplier):
  """A step setting as a step count.

  A float in (0, 1] is a fraction of `total_steps` (already multiplied);
  anything else is parsed by `training.parse_steps` and scaled by
  `multiplier`.
  """
  if isinstance(value, float) and 0.0 < value <= 1.0:
    return int(round(value * total_steps))
  steps = training.parse_steps(value, steps_per_epoch, setting)
  return int(round(steps * multiplier))


def _check_step(value, setting, positive=False):
  """Validates the syntax of a step setting (fractions or step counts)."""
  if isinstance(value, float) and 0.0 < value <= 1.0:
    return value
  if isinstance(value, float) and not value.is_integer():
    raise ConfigError(setting, f'expected a fraction of training in (0, 1], '
                      f'or steps like 500, "500it" or "2ep", got {value!r}')
  try:
    steps = training.parse_steps(value, 1, setting)
  except ConfigError:
    raise ConfigError(setting, f'expected a fraction of training in (0, 1], '
                      f'or steps like 500, "500it" or "2ep", got '
                      f'{value!r}') from None
  if positive and steps < 1:
    raise ConfigError(setting, f'must be at least 1 step, got {value!r}')
  return value


@gin.configurable('sparse_training')
def sparse_training_config(method='rigl', sparsity=0.9, distribution='erk',
                           power_scale=1.0, custom_sparsity=None,
                           dense_first_layer=None, update_every=100,
                           end_step=0.75, drop_fraction=0.3,
                           drop_fraction_decay='cosine', seed=None):
  """Sparse-training settings (gin: `sparse_training.*`).

  Args:
    method: 'rigl', 'set', 'static' or 'gmp'.
    sparsity: overall sparsity of the layers not named in custom_sparsity
      (the final sparsity for 'gmp'), in [0, 1).
    distribution: 'uniform', 'er' or 'erk' (per-layer sparsities).
    power_scale: exponent of the ER/ERK raw densities (0 = uniform).
    custom_sparsity: dict layer name or weight key -> sparsity, overriding
      the distribution for those layers (e.g. {'conv1': 0.0} keeps conv1
      dense).
    dense_first_layer: keep the first prunable layer dense. None: True for
      'uniform' (as the RigL paper), False for 'er' / 'erk'.
    update_every: ΔT, steps between mask updates (500, '500it', '1ep');
      not scaled by training.steps_multiplier.
    end_step: T_end, no mask updates at or after it: a fraction of training
      in (0, 1] (default 0.75) or steps (scaled by the multiplier).
    drop_fraction: alpha, the drop fraction at step 0, in [0, 1).
    drop_fraction_decay: 'cosine', 'constant' or 'lr'.
    seed: seeds the initial masks and SET's growth; None: training.seed.
  """
  check_choice('sparse_training.method', method, METHODS)
  sparsity = check_range('sparse_training.sparsity', sparsity)
  check_choice('sparse_training.distribution', distribution,
               tuple(distributions.DISTRIBUTIONS))
  power_scale = check_range('sparse_training.power_scale', power_scale, 0.0,
                            math.inf)
  if custom_sparsity is None:
    custom_sparsity = {}
  if not isinstance(custom_sparsity, dict):
    raise ConfigError('sparse_training.custom_sparsity', 'expected a dict '
                      f'layer name -> sparsity, got {custom_sparsity!r}')
  for name, value in custom_sparsity.items():
    check_range(f'sparse_training.custom_sparsity[{name!r}]', value)
  if dense_first_layer is None:
    dense_first_layer = distribution == 'uniform'
  if not isinstance(dense_first_layer, (bool, np.bool_)):
    raise ConfigError('sparse_training.dense_first_layer', 'expected True, '
                      f'False or None (auto), got {dense_first_layer!r}')
  if isinstance(update_every, float):
    raise ConfigError('sparse_training.update_every', 'expected steps like '
                      f'100, "100it" or "1ep", got {update_every!r}')
  _check_step(update_every, 'sparse_training.update_every', positive=True)
  _check_step(end_step, 'sparse_training.end_step')
  drop_fraction = check_range('sparse_training.drop_fraction', drop_fraction)
  check_choice('sparse_training.drop_fraction_decay', drop_fraction_decay,
               DECAYS)
  if seed is not None and (isinstance(seed, bool) or not isinstance(
      seed, (int, np.integer)) or seed < 0):
    raise ConfigError('sparse_training.seed',
                      f'expected None or an integer >= 0, got {seed!r}')
  return SparseTrainingConfig(
      method=method, sparsity=sparsity, distribution=distribution,
      power_scale=power_scale,
      custom_sparsity={k: float(v) for k, v in custom_sparsity.items()},
      dense_first_layer=bool(dense_first_layer), update_every=update_every,
      end_step=end_step, drop_fraction=drop_fraction,
      drop_fraction_decay=drop_fraction_decay,
      seed=None if seed is None else int(seed))


@gin.configurable('gmp')
def gmp_config(begin_step=0.125, end_step=0.75, frequency=100, power=3.0,
               initial_sparsity=0.0):
  """Gradual magnitude pruning settings (gin: `gmp.*`).

  They parametrise `tfmot.sparsity.keras.PolynomialDecay`, one per layer,
  whose final sparsity is the layer's target from `sparse_training.*`:

      s(t) = s_f + (s_i - s_f) * (1 - (t - begin) / (end - begin)) ** power

  Masks are pruned at the steps where the schedule says so (every
  `frequency` steps from `begin_step` to `end_step`) and, so the target is
  always reached, at `end_step` too.

  Args:
    begin_step, end_step: a fraction of training in (0, 1] or steps
      (scaled by training.steps_multiplier). Defaults 1/8 and 3/4 of
      training (our choice: masks fixed for the last quarter, as RigL's
      T_end).
    frequency: steps between pruning steps (Zhu & Gupta: 100 to 1000).
    power: exponent of the polynomial (Zhu & Gupta: 3).
    initial_sparsity: s_i, in [0, 1).
  """
  _check_step(begin_step, 'gmp.begin_step')
  _check_step(end_step, 'gmp.end_step')
  if (isinstance(frequency, bool) or not isinstance(frequency, (int, np.integer))
      or frequency < 1):
    raise ConfigError('gmp.frequency',
                      f'expected an integer >= 1, got {frequency!r}')
  power = check_range('gmp.power', power, 0.0, math.inf, low_open=True)
  initial_sparsity = check_range('gmp.initial_sparsity', initial_sparsity)
  return GMPConfig(begin_step=begin_step, end_step=end_step,
                   frequency=int(frequency), power=power,
                   initial_sparsity=initial_sparsity)


@dataclasses.dataclass(frozen=True)
class DropFraction:
  """f(t): the fraction of each layer's active weights replaced at step t."""
  alpha: float
  decay: str
  end_step: int

  def __call__(self, step, lr_ratio=1.0):
    """f at `step`; `lr_ratio` = lr(step) / base rate (used by 'lr')."""
    if self.decay == 'cosine':
      t = min(max(step, 0), self.end_step) / max(self.end_step, 1)
      return self.alpha / 2.0 * (1.0 + math.cos(math.pi * t))
    if self.decay == 'lr':
      return self.alpha * float(lr_ratio)
    return self.alpha


# ------------------------------------------------------------------------------
# Masks, scores, optimizer slots
# ------------------------------------------------------------------------------


def target_sparsities(model, cfg):
  """Per-weight-key sparsities from the distribution, custom overrides and
  the dense first layer."""
  entries = wrapper_lib.prunable_entries(model)
  if not entries:
    raise ValueError('the model has no TicketWrapper layers; call '
                     'tf_tickets.wrap(model) first')
  shapes = pruning.weight_shapes(model)
  custom = pruning._resolve(  # pylint: disable=protected-access
      cfg.custom_sparsity, entries, 'sparse_training.custom_sparsity')
  if cfg.dense_first_layer:
    custom.setdefault(next(iter(shapes)), 0.0)
  try:
    return distributions.compute(cfg.distribution, shapes, cfg.sparsity,
                                 custom=custom, power_scale=cfg.power_scale)
  except ConfigError as e:
    raise ConfigError('sparse_training', str(e)) from None


def initialize_masks(model, cfg, seed):
  """Sets the starting masks of `cfg.method`; returns the target sparsities.

  'gmp' starts dense (all ones); the others from random masks with the
  target sparsities (`pruning.init_masks`, seeded with `seed`).
  """
  sparsities = target_sparsities(model, cfg)
  if cfg.method == 'gmp':
    pruning.set_masks(model, {k: np.ones(s) for k, s in
                              pruning.weight_shapes(model).items()})
  else:
    pruning.init_masks(model, sparsities, seed=seed)
  return sparsities


def select(scores, candidates, count, largest=False):
  """Flat indices of the `count` candidates with the smallest (or largest)
  scores.

  Exact: returns min(count, #candidates) indices. Ties are broken by flat
  index (lowest first); NaN scores rank last. O(n) (a partition, no sort).
  """
  idx = np.flatnonzero(candidates)
  if count <= 0:
    return idx[:0]
  if count >= idx.size:
    return idx
  s = scores[idx]
  if largest:
    s = -s
  s = np.where(np.isnan(s), np.inf, s)
  kth = np.partition(s, count - 1)[count - 1]
  below = idx[s < kth]
  ties = idx[s == kth]
  return np.concatenate([below, ties[:count - below.size]])


def optimizer_slots(optimizer, variable):
  """The optimizer variables kept per entry of `variable` (momentum, Adam's
  m and v, ...), i.e. its slots with the variable's shape.

  New tf_keras optimizers keep slots in lists indexed by
  `optimizer._index_dict[optimizer._var_key(variable)]` (`_momentums`,
  `_velocities`, `momentums`, ...); every such list entry that is an
  optimizer variable of the same shape counts. Legacy optimizers use
  `get_slot_names` / `get_slot`.
  """
  if hasattr(optimizer, 'get_slot_names'):  # legacy optimizers
    slots = [optimizer.get_slot(variable, n)
             for n in optimizer.get_slot_names()]
    return [s for s in slots if s is not None and s.shape == variable.shape]
  index_dict = getattr(optimizer, '_index_dict', None)
  if not index_dict:
    return []
  index = index_dict.get(optimizer._var_key(variable))  # pylint: disable=protected-access
  if index is None:
    return []
  own = {id(v) for v in optimizer.variables}
  slots, seen = [], set()
  for name, value in vars(optimizer).items():
    if name == '_variables' or isinstance(value, (str, bytes, tf.Variable)):
      continue
    try:
      if len(value) != len(index_dict):
        continue
      candidate = value[index]
    except (TypeError, KeyError, IndexError):
      continue
    if (id(candidate) in own and id(candidate) not in seen
        and candidate is not variable and candidate.shape == variable.shape):
      seen.add(id(candidate))
      slots.append(candidate)
  return slots


def _zero_at(variable, positions):
  """Sets `variable` to 0 where the boolean numpy array `positions` is True."""
  where = tf.constant(positions.reshape(variable.shape))
  variable.assign(tf.where(where, tf.zeros_like(variable), variable))


# ------------------------------------------------------------------------------
# Hooks
# ------------------------------------------------------------------------------


class _State(tf.Module):
  """Checkpointed state of a sparse-training hook."""

  def __init__(self, masks, track_growth):
    super().__init__(name='sparse_training')
    common = dict(trainable=False,
                  synchronization=tf.VariableSynchronization.ON_WRITE,
                  aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self.start_masks = [tf.Variable(m, **common) for m in masks]
    self.grown = ([tf.Variable(np.zeros_like(m), **common) for m in masks]
                  if track_growth else [])
    # [number of mask updates, connections grown in total]
    self.counters = tf.Variable(np.zeros(2, np.int64), **common)


class SparsityHook(training.Hook):
  """Shared mechanics: checkpointed start masks, churn, stats, results."""

  method = None
  tracks_growth = False

  def __init__(self, cfg):
    self.cfg = cfg
    self._state = None
    self.seed = cfg.seed

  # -- state ---------------------------------------------------------------
  def state(self, trainer):
    masks = pruning.get_masks(trainer.model)
    self.keys = list(masks)
    self._state = _State([masks[k] for k in self.keys], self.tracks_growth)
    return self._state

  def begin(self, trainer):
    if self._state is None:
      raise RuntimeError('the sparse-training hook must be given to the '
                         'Trainer that runs it (hooks=[...])')
    if self.cfg.seed is None:
      self.seed = trainer.config.seed
    if int(trainer.step_var.numpy()) == 0:  # a fresh run, not a resume
      masks = pruning.get_masks(trainer.model)
      for v, k in zip(self._state.start_masks, self.keys):
        v.assign(masks[k])
      for v in self._state.grown:
        v.assign(tf.zeros_like(v))
      self._state.counters.assign([0, 0])
    self.start = {k: v.numpy() > 0
                  for k, v in zip(self.keys, self._state.start_masks)}
    self.ever_grown = {k: v.numpy() > 0
                       for k, v in zip(self.keys, self._state.grown)}
    self.counters = [int(c) for c in self._state.counters.numpy()]
    self._resolve(trainer)

  def _resolve(self, trainer):
    """Resolves step settings against the trainer's schedule."""

  def _steps(self, trainer, value, setting):
    return resolve_step(value, setting, trainer.schedule.steps,
                        trainer.data.steps_per_epoch,
                        trainer.config.steps_multiplier)

  # -- bookkeeping -----------------------------------------------------------
  def churn(self, masks):
    """(total churn, {key: churn}): the fraction of the start mask's
    connections no longer active."""
    lost = total = 0
    per_key = {}
    for k in self.keys:
      start = self.start[k]
      n = int(np.count_nonzero(start))
      gone = int(np.count_nonzero(start & ~(masks[k] > 0)))
      per_key[k] = gone / n if n else 0.0
      lost += gone
      total += n
    return (lost / total if total else 0.0), per_key

  def _record(self, trainer, step, stats, masks, grown, drop_fraction,
              label=None):
    """Saves the new state, tells the hooks, logs one line."""
    if grown:
      for k, v in zip(self.keys, self._state.grown):
        if k in grown:
          self.ever_grown[k] |= grown[k].reshape(self.ever_grown[k].shape)
          v.assign(self.ever_grown[k].astype(v.dtype.as_numpy_dtype))
    self.counters[0] += 1
    self.counters[1] += sum(s['grown'] for s in stats.values())
    self._state.counters.assign(self.counters)
    total, per_key = self.churn(masks)
    for k, s in stats.items():
      s['churn'] = per_key[k]
    trainer.mask_updated(step, stats)
    logging.info(
        '%s step %d: %s churn %.4f | %s', self.method, step,
        label or f'f={drop_fraction:.4f}', total, ' '.join(
            f'{k} -{s["dropped"]}/+{s["grown"]} ({s["churn"]:.3f})'
            for k, s in stats.items() if s['dropped'] or s['grown']))
    if trainer.writer is not None:
      with trainer.writer.as_default(step=step):
        if drop_fraction is not None:
          tf.summary.scalar('sparse_training/drop_fraction', drop_fraction)
        tf.summary.scalar('sparse_training/churn', total)

  def end(self, trainer, result):
    masks = pruning.get_masks(trainer.model)
    total, per_key = self.churn(masks)
    result.update(
        method=self.method, churn=total, layer_churn=per_key,
        mask_updates=self.counters[0], grown_connections=self.counters[1],
        target_sparsity=self.cfg.sparsity, distribution=self.cfg.distribution)
    if self.tracks_growth:
      ever = sum(int(np.count_nonzero(g)) for g in self.ever_grown.values())
      alive = sum(int(np.count_nonzero(self.ever_grown[k] & (masks[k] > 0)))
                  for k in self.keys)
      result['grown_survival'] = alive / ever if ever else None


class StaticSparseHook(SparsityHook):
  """Static sparse training: the initial mask is never changed."""
  method = 'static'


class DynamicSparseHook(SparsityHook):
  """Drop-and-grow at fixed parameter count (the template for RigL / SET).

  Subclasses define the scores; `update` does the rest.
  """

  tracks_growth = True
  uses_gradients = False

  def drop_score(self, key, index, step, weight, grad):
    """Per-entry score; the active entries with the SMALLEST are dropped."""
    del key, index, step, grad
    return np.abs(weight)

  def grow_score(self, key, index, step, weight, grad):
    """Per-entry score; the candidates with the LARGEST are grown."""
    raise NotImplementedError

  def _resolve(self, trainer):
    cfg = self.cfg
    self.update_every = training.parse_steps(
        cfg.update_every, trainer.data.steps_per_epoch,
        'sparse_training.update_every')
    if self.update_every < 1:
      raise ConfigError('sparse_training.update_every',
                        'must be at least 1 step')
    self.end_step = self._steps(trainer, cfg.end_step,
                                'sparse_training.end_step')
    if self.end_step > trainer.schedule.steps:
      raise ConfigError(
          'sparse_training.end_step', f'{cfg.end_step!r} is step '
          f'{self.end_step}, after the end of training '
          f'({trainer.schedule.steps} steps)')
    if self.end_step <= self.update_every:
      logging.warning('sparse_training: no mask updates (end_step %d <= '
                      'update_every %d)', self.end_step, self.update_every)
    self.drop_fraction = DropFraction(cfg.drop_fraction,
                                      cfg.drop_fraction_decay, self.end_step)

  def is_update_step(self, step):
    return 0 < step < self.end_step and step % self.update_every == 0

  def wants_gradients(self, step):
    return self.uses_gradients and self.is_update_step(step)

  def fraction_at(self, trainer, step):
    ratio = 1.0
    if self.cfg.drop_fraction_decay == 'lr':
      ratio = trainer.lr.value(step) / trainer.lr.base
    return self.drop_fraction(step, ratio)

  def after_step(self, trainer, step, grads):
    if self.is_update_step(step):
      self.update(trainer, step, grads)

  def end(self, trainer, result):
    super().end(trainer, result)
    result.update(update_every=self.update_every,
                  update_end_step=self.end_step,
                  drop_fraction=self.cfg.drop_fraction,
                  drop_fraction_decay=self.cfg.drop_fraction_decay)

  def update(self, trainer, step, grads):
    """One drop-and-grow update of every layer."""
    f = self.fraction_at(trainer, step)
    entries = wrapper_lib.prunable_entries(trainer.model)
    masks = {k: wr.masks[i].numpy() for k, (wr, i) in entries.items()}
    new_masks, grown, stats = {}, {}, {}
    for index, (key, (wr, i)) in enumerate(entries.items()):
      mask = masks[key].reshape(-1) > 0
      active = int(np.count_nonzero(mask))
      k = int(round(f * active)) if 0 < active < mask.size else 0
      stats[key] = dict(dropped=k, grown=k, regrown=0, active=active,
                        drop_fraction=f)
      if k == 0:
        continue
      var = wr.prunable_weights[i]
      weight = var.numpy().reshape(-1)
      grad = None
      if self.uses_gradients:
        if grads is None or id(var) not in grads:
          raise RuntimeError(f'{self.method}: no gradient for {key} at step '
                             f'{step}')
        grad = np.asarray(grads[id(var)]).reshape(-1)
      drop = select(self.drop_score(key, index, step, weight, grad), mask, k)
      after = mask.copy()
      after[drop] = False
      grow = select(self.grow_score(key, index, step, weight, grad), ~after,
                    k, largest=True)
      new = after
      new[grow] = True
      positions = np.zeros(mask.size, bool)
      positions[grow] = True
      stats[key]['regrown'] = int(np.count_nonzero(mask[grow]))
      new_masks[key] = new.reshape(masks[key].shape).astype(np.float32)
      grown[key] = positions
    if new_masks:
      pruning.set_masks(trainer.model, new_masks)
      for key, positions in grown.items():
        wr, i = entries[key]
        var = wr.prunable_weights[i]
        _zero_at(var, positions)  # just-dropped, regrown: start at 0 too
        for slot in optimizer_slots(trainer.optimizer, var):
          _zero_at(slot, positions)
      masks.update(new_masks)
    self._record(trainer, step, stats, masks, grown, f)


class RigLHook(DynamicSparseHook):
  """RigL: grow where the dense gradient is largest."""
  method = 'rigl'
  uses_gradients = True

  def grow_score(self, key, index, step, weight, grad):
    del key, index, step, weight
    return np.abs(grad)


class SETHook(DynamicSparseHook):
  """SET: grow at random, seeded by (seed, step, layer)."""
  method = 'set'

  def grow_score(self, key, index, step, weight, grad):
    del key, grad
    rng = np.random.default_rng([int(self.seed), _SET_STREAM, int(step),
                                 int(index)])
    return rng.random(weight.size)


class GradualPruningHook(SparsityHook):
  """Gradual magnitude pruning (Zhu & Gupta 2017) with tfmot's schedule.

  Each layer with a target sparsity > 0 gets a
  `tfmot.sparsity.keras.PolynomialDecay`; at its pruning steps (and at
  `gmp.end_step`) the layer's active weights with the smallest magnitude are
  pruned until round((1 - s(t)) * size) remain. Masks only shrink.
  """
  method = 'gmp'

  def __init__(self, cfg, gmp, sparsities=None):
    super().__init__(cfg)
    self.gmp = gmp
    self.sparsities = sparsities

  def _resolve(self, trainer):
    gmp = self.gmp
    self.begin_step = self._steps(trainer, gmp.begin_step, 'gmp.begin_step')
    self.end_step = self._steps(trainer, gmp.end_step, 'gmp.end_step')
    if self.end_step > trainer.schedule.steps:
      raise ConfigError('gmp.end_step', f'{gmp.end_step!r} is step '
                        f'{self.end_step}, after the end of training '
                        f'({trainer.schedule.steps} steps)')
    if self.begin_step >= self.end_step:
      raise ConfigError('gmp.begin_step', f'{gmp.begin_step!r} is step '
                        f'{self.begin_step}, not before gmp.end_step '
                        f'(step {self.end_step})')
    if self.sparsities is None:
      self.sparsities = target_sparsities(trainer.model, self.cfg)
    self.schedules = {}
    for k in self.keys:
      final = float(self.sparsities[k])
      if final > 0.0:
        self.schedules[k] = tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=min(gmp.initial_sparsity, final),
            final_sparsity=final, begin_step=self.begin_step,
            end_step=self.end_step, power=gmp.power,
            frequency=gmp.frequency)

  def sparsity_at(self, key, step):
    """(should_prune, sparsity) of `key`'s schedule at `step`."""
    should, sparsity = self.schedules[key](tf.constant(step, tf.int64))
    return bool(should), float(sparsity)

  def after_step(self, trainer, step, grads):
    if not self.schedules or not self.begin_step <= step <= self.end_step:
      return
    first = next(iter(self.schedules))
    if not self.sparsity_at(first, step)[0] and step != self.end_step:
      return
    entries = wrapper_lib.prunable_entries(trainer.model)
    masks = pruning.get_masks(trainer.model)
    new_masks, stats = {}, {}
    for key, (wr, i) in entries.items():
      mask = masks[key].reshape(-1) > 0
      active = int(np.count_nonzero(mask))
      stats[key] = dict(dropped=0, grown=0, regrown=0, active=active)
      if key not in self.schedules:
        continue
      if step >= self.end_step:
        target = float(self.sparsities[key])
      else:
        target = self.sparsity_at(key, step)[1]
      stats[key]['sparsity'] = target
      keep = int(round((1.0 - target) * mask.size))
      if active <= keep:
        continue
      weight = wr.prunable_weights[i].numpy().reshape(-1)
      drop = select(np.abs(weight), mask, active - keep)
      mask[drop] = False
      stats[key].update(dropped=int(drop.size), active=keep)
      new_masks[key] = mask.reshape(masks[key].shape).astype(np.float32)
    if not new_masks:  # e.g. s(begin_step) = initial_sparsity = 0
      return
    pruning.set_masks(trainer.model, new_masks)
    masks.update(new_masks)
    report = wrapper_lib.sparsity_report(trainer.model)
    self._record(trainer, step, stats, masks, {}, None,
                 label=f'sparsity={report["sparsity"]:.4f}')

  def end(self, trainer, result):
    super().end(trainer, result)
    result.update(gmp_begin_step=self.begin_step, gmp_end_step=self.end_step)


HOOKS = {'rigl': RigLHook, 'set': SETHook, 'static': StaticSparseHook}


def make_hook(cfg, gmp=None):
  """The hook of `cfg.method` ('gmp' reads `gmp.*` from gin unless given)."""
  if cfg.method == 'gmp':
    return GradualPruningHook(cfg, gmp if gmp is not None else gmp_config())
  return HOOKS[cfg.method](cfg)


# ------------------------------------------------------------------------------
# The experiment
# ------------------------------------------------------------------------------


def _has_checkpoint(net_dir):
  return tf.train.latest_checkpoint(os.path.join(net_dir, 'checkpoints')) \
      is not None


def run(ctx):
  """Trains one sparse network in `RUN/level_0` and writes results.csv."""
  cfg = sparse_training_config()
  hook = make_hook(cfg)
  seed = cfg.seed if cfg.seed is not None else ctx.config.seed
  model = ctx.build_model()
  net_dir = os.path.join(ctx.run_dir, 'level_0')
  if not training.is_finished(net_dir) and not _has_checkpoint(net_dir):
    sparsities = initialize_masks(model, cfg, seed)
    logging.info('%s: target sparsities %s', cfg.method, ', '.join(
        f'{k} {s:.4f}' for k, s in sparsities.items()))
    training.save_weights(model, os.path.join(net_dir, 'start'))
  result = ctx.train(model, net_dir, hooks=[hook], extra=dict(
      level=0, branch='sparse_training', method=cfg.method, seed=seed))
  experiment.write_results(os.path.join(ctx.run_dir, 'results.csv'),
                           [result])
  logging.info('%s: final density %.4f, test accuracy %.4f', cfg.method,
               result['density'], result['test_accuracy'])
  return [result]
