"""Mask operations on wrapped models: magnitude and random pruning, rewinding.

All functions work on a model made by `tf_tickets.wrap` and change it in
place. They read weights on the host and write masks and weights with
`assign`, so under `tf.distribute` they must be called in cross-replica
context (outside `strategy.run`); every replica then gets the same mask.

Counts are exact and ties are broken deterministically (by flat index), so
the same weights give the same mask on every machine.
"""

import numpy as np

from tf_tickets import distributions
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.errors import ConfigError
from tf_tickets.errors import check_choice
from tf_tickets.errors import check_range
from tf_tickets.keras import keras

SCOPES = ('layerwise', 'global')
REWIND_TARGETS = ('init', 'rewind_point')


def _entries(model):
  entries = wrapper_lib.prunable_entries(model)
  if not entries:
    raise ValueError('the model has no TicketWrapper layers; call '
                     'tf_tickets.wrap(model) first')
  return entries


def _resolve(names, entries, setting):
  """Maps layer names or weight keys to weight keys; unknown names raise."""
  out = {}
  for name, value in dict(names).items():
    matched = [k for k, (wr, _) in entries.items()
               if k == name or wr.layer.name == name]
    if not matched:
      raise ConfigError(setting, f'unknown layer {name!r}; prunable weights '
                        f'are {list(entries)}')
    for k in matched:
      out[k] = value
  return out


def _smallest(scores, active, count):
  """Flat indices of the `count` active entries with the smallest score.

  Ties are broken by flat index (lowest first), so the result is exact and
  deterministic.
  """
  idx = np.flatnonzero(active)
  if count <= 0 or idx.size == 0:
    return idx[:0]
  order = np.lexsort((idx, scores[idx]))
  return idx[order[:count]]


def get_masks(model):
  """Dict key -> numpy mask (0/1 float) for every prunable weight."""
  return {k: wr.masks[i].numpy() for k, (wr, i) in _entries(model).items()}


def get_weights(model, which='weights'):
  """Dict key -> numpy array of 'weights', 'initial' or 'rewind' values."""
  attr = dict(weights='prunable_weights', initial='initial_values',
              rewind='rewind_values')[which]
  return {k: getattr(wr, attr)[i].numpy()
          for k, (wr, i) in _entries(model).items()}


def set_masks(model, masks):
  """Sets masks from a dict key -> 0/1 array; zeroes what they prune."""
  entries = _entries(model)
  unknown = set(masks) - set(entries)
  if unknown:
    raise ValueError(f'masks for unknown weights {sorted(unknown)}')
  for wr in {id(wr): wr for wr, _ in entries.values()}.values():
    new = []
    for key, m in zip(wr.keys, wr.masks):
      new.append(masks[key] if key in masks else m.numpy())
    wr.set_masks(new)


def prune_by_magnitude(model, fraction, scope='layerwise', fractions=None,
                       skip=()):
  """Prunes `fraction` of the remaining weights with the smallest magnitude.

  Args:
    model: a wrapped model.
    fraction: fraction of the currently *remaining* weights to remove, in
      [0, 1).
    scope: 'layerwise' (each weight loses `fraction` of its remaining
      entries) or 'global' (`fraction` of all remaining entries of the pooled
      weights, smallest magnitudes across layers).
    fractions: optional per-layer overrides, layer name or weight key ->
      fraction. Overridden weights are always pruned layerwise at their own
      rate (e.g. the LTH output layer at half rate) and stay out of the
      global pool.
    skip: layer names or weight keys never pruned.

  Returns:
    dict key -> number of entries pruned.
  """
  check_range('lottery.pruning_fraction', fraction)
  check_choice('lottery.scope', scope, SCOPES)
  entries = _entries(model)
  overrides = _resolve(fractions or {}, entries, 'lottery.layer_fractions')
  for k, f in overrides.items():
    check_range(f'lottery.layer_fractions[{k!r}]', f)
  skipped = set(_resolve({s: None for s in skip}, entries,
                         'lottery.unpruned_layers'))
  masks = get_masks(model)
  weights = get_weights(model)
  pruned = {k: 0 for k in entries}

  def prune_one(key, f):
    m = masks[key].reshape(-1)
    count = int(round(f * np.count_nonzero(m)))
    drop = _smallest(np.abs(weights[key]).reshape(-1), m > 0, count)
    m[drop] = 0.0
    pruned[key] = int(drop.size)

  pool = [k for k in entries if k not in skipped and k not in overrides]
  for k in entries:
    if k in skipped:
      continue
    if k in overrides:
      prune_one(k, overrides[k])
    elif scope == 'layerwise':
      prune_one(k, fraction)
  if scope == 'global' and pool:
    flat_m = np.concatenate([masks[k].reshape(-1) for k in pool])
    flat_w = np.concatenate([np.abs(weights[k]).reshape(-1) for k in pool])
    count = int(round(fraction * np.count_nonzero(flat_m)))
    drop = _smallest(flat_w, flat_m > 0, count)
    flat_m[drop] = 0.0
    offset = 0
    for k in pool:
      n = masks[k].size
      pruned[k] = int(np.count_nonzero(flat_m[offset:offset + n] == 0)
                      - np.count_nonzero(masks[k] == 0))
      masks[k] = flat_m[offset:offset + n].reshape(masks[k].shape)
      offset += n
  set_masks(model, masks)
  return pruned


def random_masks(shapes, sparsities, seed):
  """Random 0/1 masks with exactly round(density * size) ones per weight."""
  out = {}
  for i, (key, shape) in enumerate(shapes.items()):
    size = int(np.prod(shape))
    keep = int(round((1.0 - sparsities[key]) * size))
    rng = np.random.default_rng([int(seed), i])
    m = np.zeros(size, np.float32)
    m[rng.choice(size, size=keep, replace=False)] = 1.0
    out[key] = m.reshape(shape)
  return out


def prune_randomly(model, sparsities, seed=0):
  """Replaces every mask by a random one with the given per-weight sparsity.

  Args:
    model: a wrapped model.
    sparsities: dict layer name or weight key -> sparsity in [0, 1); weights
      not named keep their current mask. Use
      `{k: r['sparsity'] for k, r in sparsity_report(m)['layers'].items()}`
      to copy the per-layer densities of another model (the random_prune
      control).
    seed: seeds the masks (deterministic for a seed).
  """
  entries = _entries(model)
  sparsities = _resolve(sparsities, entries, 'sparsities')
  for k, s in sparsities.items():
    check_range(f'sparsity[{k!r}]', s)
  shapes = {k: tuple(wr.masks[i].shape) for k, (wr, i) in entries.items()
            if k in sparsities}
  set_masks(model, random_masks(shapes, sparsities, seed))


def weight_shapes(model):
  """Dict key -> shape of every prunable weight (input to distributions)."""
  return {k: tuple(wr.masks[i].shape)
          for k, (wr, i) in _entries(model).items()}


def init_masks(model, distribution, seed=0, sparsity=None, custom=None,
               power_scale=1.0):
  """Random initial masks for sparse-from-scratch training.

  Args:
    model: a wrapped model.
    distribution: 'uniform', 'er' or 'erk' (with `sparsity`, `custom`,
      `power_scale`, see `tf_tickets.distributions`), or a dict
      key -> sparsity.
    seed: seeds the masks.

  Returns:
    the dict key -> sparsity that was applied.
  """
  if isinstance(distribution, str):
    if sparsity is None:
      raise ConfigError('sparse_training.sparsity',
                        'is required with a named distribution')
    shapes = weight_shapes(model)
    custom = _resolve(custom or {}, _entries(model),
                      'sparse_training.custom_sparsity')
    sparsities = distributions.compute(distribution, shapes, sparsity,
                                       custom=custom, power_scale=power_scale)
  else:
    sparsities = dict(distribution)
  prune_randomly(model, sparsities, seed)
  return sparsities


def rewind(model, to='init'):
  """Sets every prunable weight to theta * mask (theta_0 or theta_k)."""
  check_choice('to', to, REWIND_TARGETS)
  for wr in wrapper_lib.wrappers(model):
    source = wr.initial_values if to == 'init' else wr.rewind_values
    wr.set_weights_masked(source)


def set_rewind_point(model):
  """Stores the current prunable weights as the rewind point theta_k."""
  for wr in wrapper_lib.wrappers(model):
    for w, r in zip(wr.prunable_weights, wr.rewind_values):
      r.assign(w)


def _initializer_for(layer, weight, seed):
  """The layer's own initializer for `weight`, re-seeded with `seed`."""
  config = layer.get_config()
  short = wrapper_lib.short_name(weight)
  for name in (f'{short}_initializer',
               f'{short.replace("_kernel", "")}_initializer',
               'kernel_initializer'):
    if name in config:
      init_config = keras.initializers.serialize(
          keras.initializers.get(config[name]))
      init_config = dict(init_config)
      init_config['config'] = dict(init_config.get('config', {}), seed=seed)
      return keras.initializers.get(init_config)
  raise ValueError(f'cannot find the initializer of weight {weight.name} in '
                   f'the config of layer {layer.name!r}')


def reinitialize(model, seed):
  """Draws a fresh theta_0 from each layer's own initializer (random_reinit).

  The new values replace `initial_values` and the rewind point, and the
  weights are set to new theta_0 * mask, keeping the masks.
  """
  for n, (wr, i) in enumerate(_entries(model).values()):
    w = wr.prunable_weights[i]
    init = _initializer_for(wr.layer, w, seed=int(seed) * 100003 + n)
    value = init(shape=w.shape, dtype=w.dtype)
    wr.initial_values[i].assign(value)
    wr.rewind_values[i].assign(value)
  rewind(model, 'init')
