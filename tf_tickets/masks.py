"""Mask operations on wrapped models: get/set, random masks, rewinding, re-initialisation, the sparsity report.

All functions work on a model made by `tf_tickets.wrap` and change it in
place. They read weights on the host and write masks and weights with
`assign`, so under `tf.distribute` they must be called in cross-replica
context (outside `strategy.run`); every replica then gets the same mask.

Counts are exact and ties are broken deterministically (by flat index), so
the same weights give the same mask on every machine. Every selection of
entries by score in tf_tickets goes through `topk.select`.
"""

import collections

import numpy as np

from tf_tickets import blocks
from tf_tickets import distributions
from tf_tickets import flops
from tf_tickets import structure as structure_lib
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.errors import ConfigError
from tf_tickets.errors import check_choice
from tf_tickets.errors import check_range
from tf_tickets.keras import keras

REWIND_TARGETS = ('init', 'rewind_point')


def entries_of(model):
  """Ordered dict key -> (wrapper, index); raises if the model is not wrapped."""
  entries = wrapper_lib.prunable_entries(model)
  if not entries:
    raise ValueError('the model has no TicketWrapper layers; call '
                     'tf_tickets.wrap(model) first')
  return entries


def resolve_names(names, entries, setting):
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


def get_masks(model):
  """Dict key -> numpy mask (0/1 float) for every prunable weight."""
  return {k: wr.masks[i].numpy() for k, (wr, i) in entries_of(model).items()}


def get_weights(model, which='weights'):
  """Dict key -> numpy array of 'weights', 'initial' or 'rewind' values."""
  attr = dict(weights='prunable_weights', initial='initial_values',
              rewind='rewind_values')[which]
  return {k: getattr(wr, attr)[i].numpy()
          for k, (wr, i) in entries_of(model).items()}


def set_masks(model, masks):
  """Sets masks from a dict key -> 0/1 array; zeroes what they prune."""
  entries = entries_of(model)
  unknown = set(masks) - set(entries)
  if unknown:
    raise ValueError(f'masks for unknown weights {sorted(unknown)}')
  for wr in {id(wr): wr for wr, _ in entries.values()}.values():
    new = []
    for key, m in zip(wr.keys, wr.masks):
      new.append(masks[key] if key in masks else m.numpy())
    wr.set_masks(new)


def random_masks(shapes, sparsities, seed, block=None):
  """Random 0/1 masks with exactly round(density * size) ones per weight;
  with `block` (see `tf_tickets.blocks`) whole random blocks of the
  blocked weights, as many as `Layout.block_sparsity` gives."""
  layouts = blocks.layouts(shapes, block, sparsities)
  out = {}
  for i, (key, shape) in enumerate(shapes.items()):
    layout = layouts.get(key)
    size = layout.size if layout else int(np.prod(shape))
    s = layout.block_sparsity(sparsities[key]) if layout else sparsities[key]
    keep = int(round((1.0 - s) * size))
    rng = np.random.default_rng([int(seed), i])
    m = np.zeros(size, bool)
    m[rng.choice(size, size=keep, replace=False)] = True
    out[key] = (layout.expand(m) if layout else m).astype(
        np.float32).reshape(shape)
  return out


def prune_randomly(model, sparsities, seed=0, block=None, structure=None):
  """Replaces every mask by a random one with the given per-weight sparsity.

  Args:
    model: a wrapped model.
    sparsities: dict layer name or weight key -> sparsity in [0, 1); weights
      not named keep their current mask. Use
      `{k: r['sparsity'] for k, r in sparsity_report(m)['layers'].items()}`
      to copy the per-layer densities of another model (the random_prune
      control).
    seed: seeds the masks (deterministic for a seed).
    block: None or a block size: random whole blocks (`tf_tickets.blocks`).
    structure: None, or 'unit' / 'refill' (`tf_tickets.structure`): the
      weights of `unit_keys` get random whole units (the last partly, so
      the count is exact), the others random entries.
  """
  entries = entries_of(model)
  sparsities = resolve_names(sparsities, entries, 'sparsities')
  for k, s in sparsities.items():
    check_range(f'sparsity[{k!r}]', s)
  shapes = {k: tuple(wr.masks[i].shape) for k, (wr, i) in entries.items()
            if k in sparsities}
  masks = random_masks(shapes, sparsities, seed, block)
  structured = unit_keys(model) if structure_lib.check(structure) else ()
  for i, key in enumerate(shapes):
    if key in structured:
      rng = np.random.default_rng([int(seed), i, 1])
      masks[key] = structure_lib.random_fill(
          shapes[key], np.count_nonzero(masks[key]), rng).astype(np.float32)
  set_masks(model, masks)


def unit_keys(model):
  """The weight keys whose units (last axis: neurons, output channels) may
  be removed: the Dense and Conv2D kernels, but not those of the layers
  that feed a model output with no other prunable layer in between (a
  classifier's units are its classes; a model without traced outputs:
  its last layer). Other layers (embeddings, depthwise or transposed
  convolutions, recurrent kernels) keep element masks."""
  entries = entries_of(model)
  final, seen = set(), set()
  stack = list(getattr(model, 'outputs', None) or [])
  while stack:
    history = getattr(stack.pop(), '_keras_history', None)
    if history is None or id(history.layer) in seen:
      continue
    layer = history.layer
    seen.add(id(layer))
    if isinstance(layer, wrapper_lib.TicketWrapper):
      final.add(id(layer))
    elif isinstance(layer, keras.Model) and layer.outputs:
      stack += list(layer.outputs)
    else:
      stack += list(layer._inbound_nodes[history.node_index].keras_inputs)
  if not seen:
    final = {id(list(entries.values())[-1][0])}
  return [k for k, (wr, _) in entries.items() if id(wr) not in final
          and type(wr.layer) in (keras.layers.Dense, keras.layers.Conv2D)]


_READ_THROUGH = ('BatchNormalization', 'Dropout', 'SpatialDropout2D',
                 'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D',
                 'GlobalMaxPooling2D', 'Flatten', 'ReLU', 'LeakyReLU', 'ELU')


def unit_readers(model):
  """`unit_keys` -> the prunable Dense/Conv2D kernels that read each one's
  units through per-channel layers only (activations but softmax,
  BatchNormalization, dropout, pooling, Flatten; channels last): a
  reader's input entry i reads unit i % units. The walk follows each
  call's output tensor (a shared layer's other calls are not its
  readers); what a unit feeds through anything else (an Add, a
  concatenation, a reshape, a grouped convolution) is not followed."""
  entries = entries_of(model)
  owner = {id(wr): k for k, (wr, _) in entries.items()
           if type(wr.layer) in (keras.layers.Dense, keras.layers.Conv2D)
           and getattr(wr.layer, 'groups', 1) == 1}
  consumers = collections.defaultdict(list)  # a call's output -> calls
  for layer in model.layers:
    for index, node in enumerate(layer._inbound_nodes):
      for t in node.keras_inputs:
        h = t._keras_history
        consumers[id(h.layer), h.node_index].append((layer, index))
  out = {}
  for key in unit_keys(model):
    wr, readers, seen = entries[key][0], set(), set()
    stack = [(id(wr), i) for i in range(len(wr._inbound_nodes))]
    if getattr(wr.layer, 'data_format', None) != 'channels_last' and (
        isinstance(wr.layer, keras.layers.Conv2D)):
      stack = []
    while stack:
      for layer, index in consumers.get(stack.pop(), ()):
        if (id(layer), index) in seen:
          continue
        seen.add((id(layer), index))
        if id(layer) in owner:
          readers.add(owner[id(layer)])
        elif type(layer).__name__ in _READ_THROUGH or (
            isinstance(layer, keras.layers.Activation)
            and layer.activation.__name__ != 'softmax'):
          stack.append((id(layer), index))
    out[key] = [k for k in entries if k in readers]
  return out


def weight_shapes(model):
  """Dict key -> shape of every prunable weight (input to distributions)."""
  return {k: tuple(wr.masks[i].shape)
          for k, (wr, i) in entries_of(model).items()}


def init_masks(model, distribution, seed=0, sparsity=None, custom=None,
               power_scale=1.0, block=None):
  """Random initial masks for sparse-from-scratch training.

  Args:
    model: a wrapped model.
    distribution: 'uniform', 'er' or 'erk' (with `sparsity`, `custom`,
      `power_scale`, see `tf_tickets.distributions`), or a dict
      key -> sparsity.
    seed: seeds the masks.
    block: None or a block size (`tf_tickets.blocks`): random whole blocks.

  Returns:
    the dict key -> sparsity that was applied.
  """
  if isinstance(distribution, str):
    if sparsity is None:
      raise ConfigError('sparse_training.sparsity',
                        'is required with a named distribution')
    shapes = weight_shapes(model)
    custom = resolve_names(custom or {}, entries_of(model),
                      'sparse_training.custom_sparsity')
    sparsities = distributions.compute(distribution, shapes, sparsity,
                                       custom=custom, power_scale=power_scale)
  else:
    sparsities = dict(distribution)
  prune_randomly(model, sparsities, seed, block)
  return sparsities


def rewind(model, to='init'):
  """Restores the whole network to theta_0 ('init') or the rewind point
  theta_k ('rewind_point'): prunable weights to theta * mask, every other
  variable (biases, normalisation parameters and statistics, unwrapped
  layers) to its stored value. Masks are kept."""
  check_choice('to', to, REWIND_TARGETS)
  for wr in wrapper_lib.wrappers(model):
    source = wr.initial_values if to == 'init' else wr.rewind_values
    wr.set_weights_masked(source)
  snap = wrapper_lib.snapshot(model)
  if snap is not None:
    for v, stored in zip(snap.variables,
                         snap.initial if to == 'init' else snap.rewind):
      v.assign(stored)


def set_rewind_point(model):
  """Stores the current network state as the rewind point theta_k."""
  for wr in wrapper_lib.wrappers(model):
    for w, r in zip(wr.prunable_weights, wr.rewind_values):
      r.assign(w)
  snap = wrapper_lib.snapshot(model)
  if snap is not None:
    for v, r in zip(snap.variables, snap.rewind):
      r.assign(v)


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
      if 'seed' in init_config.get('config', {}):  # Zeros, Ones: no seed
        init_config['config'] = dict(init_config['config'], seed=seed)
      return keras.initializers.get(init_config)
  raise ValueError(f'cannot find the initializer of weight {weight.name} in '
                   f'the config of layer {layer.name!r}')


def _owners(model):
  """id(variable) -> the layer that owns it, over all (nested) layers."""
  out = {}

  def visit(layer):
    if isinstance(layer, wrapper_lib.TicketWrapper):
      layer = layer.layer
    if isinstance(layer, keras.Model):
      for sub in layer.layers:
        visit(sub)
      return
    for v in layer.weights:
      out.setdefault(id(v), layer)

  for layer in model.layers:
    visit(layer)
  return out


def reinitialize(model, seed):
  """Draws a fresh theta_0 for the whole network from each layer's own
  initializers (the random_reinit control), keeping the masks.

  Prunable weights, biases, normalisation parameters and moving statistics
  get fresh draws; variables without an initializer in their layer's config
  (e.g. the input normalisation's data statistics) keep their theta_0. The
  new values replace theta_0 and the rewind point, and the network is set to
  them (prunable weights times their masks).
  """
  for n, (wr, i) in enumerate(entries_of(model).values()):
    w = wr.prunable_weights[i]
    init = _initializer_for(wr.layer, w, seed=int(seed) * 100003 + n)
    value = init(shape=w.shape, dtype=w.dtype)
    wr.initial_values[i].assign(value)
    wr.rewind_values[i].assign(value)
  snap = wrapper_lib.snapshot(model)
  if snap is not None:
    owners = _owners(model)
    for j, (v, init_v, rew_v) in enumerate(zip(snap.variables, snap.initial,
                                               snap.rewind)):
      try:
        init = _initializer_for(owners[id(v)], v,
                                seed=int(seed) * 100003 + 50021 + j)
      except (KeyError, ValueError):
        continue  # no initializer: data statistics, kept
      value = init(shape=v.shape, dtype=v.dtype)
      init_v.assign(value)
      rew_v.assign(value)
  rewind(model, 'init')


def sparsity_report(model):
  """Per-weight and total sparsity of the prunable weights.

  Returns a dict with 'layers' (key -> {'shape', 'params', 'nonzero',
  'active', 'sparsity', 'density'}) and totals 'params', 'nonzero',
  'sparsity', 'density', plus 'all_params' (every weight of the model,
  prunable or not, e.g. biases and normalisation) and 'all_nonzero'.
  `active` counts mask ones; `nonzero` counts stored non-zero values (equal
  to active unless some surviving weight is exactly zero).
  """
  layers = collections.OrderedDict()
  total = nonzero = active = 0
  entries = wrapper_lib.prunable_entries(model)
  for key, (wr, i) in entries.items():
    m = wr.masks[i].numpy()
    w = wr.prunable_weights[i].numpy()
    n = int(m.size)
    a = int(np.count_nonzero(m))
    nz = int(np.count_nonzero(w))
    layers[key] = dict(shape=tuple(m.shape), params=n, active=a, nonzero=nz,
                       density=a / n, sparsity=1.0 - a / n)
    total += n
    active += a
    nonzero += nz
  # Every other weight once: prunable ones are counted above; masks, theta_0
  # and rewind points are not parameters.
  skip = wrapper_lib.bookkeeping(model)
  for wr in wrapper_lib.wrappers(model):
    skip.update(id(v) for v in wr.prunable_weights)
  all_params = all_nonzero = 0
  for v in model.weights:
    if id(v) in skip:
      continue
    all_params += int(np.prod(v.shape))
    all_nonzero += int(np.count_nonzero(v.numpy()))
  density = active / total if total else 1.0
  return dict(layers=layers, params=total, active=active, nonzero=nonzero,
              density=density, sparsity=1.0 - density,
              all_params=all_params + total, all_nonzero=all_nonzero + nonzero)


def format_report(report):
  """A readable table of a `sparsity_report`."""
  lines = [f'{"weight":32s} {"shape":>18s} {"params":>10s} {"active":>10s} '
           f'{"sparsity":>9s}']
  for key, r in report['layers'].items():
    lines.append(f'{key:32s} {str(r["shape"]):>18s} {r["params"]:10d} '
                 f'{r["active"]:10d} {r["sparsity"]:9.4f}')
  lines.append(f'{"total (prunable)":32s} {"":>18s} {report["params"]:10d} '
               f'{report["active"]:10d} {report["sparsity"]:9.4f}')
  return '\n'.join(lines)


def result_figures(model, training_flops=None):
  """The sparsity and FLOPs fields of a results.csv row of a wrapped model
  (`training_flops`: per example, default 3x inference; `flops.report`)."""
  report = sparsity_report(model)
  return dict(
      density=report['density'], sparsity=report['sparsity'],
      active_weights=report['active'], prunable_weights=report['params'],
      layer_density={k: r['density'] for k, r in report['layers'].items()},
      **flops.report(model, training_flops))
