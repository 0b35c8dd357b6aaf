"""The prune-wrapper: `TicketWrapper`, `wrap`, `strip`, `sparsity_report`.

A `TicketWrapper` owns, as variables (so they live in checkpoints and
SavedModels), for each prunable weight of the layer it wraps:

* `masks`: a 0/1 mask,
* `initial_values`: the weight's original initialisation theta_0,
* `rewind_values`: a rewind point theta_k that training may set later.

Which weights are prunable comes from tfmot: its prune registry for built-in
layers and the `tfmot.sparsity.keras.PrunableLayer` protocol for custom ones.

Invariant: the stored value of every prunable weight equals weight * mask at
all times. The forward pass therefore reads the weight directly (no extra
multiply), and the invariant is kept by

* a variable constraint that every Keras optimizer (new and legacy) applies
  right after its update, under `tf.distribute` too, so pruned entries are
  exactly 0.0 after every training step whatever the optimizer, momentum,
  weight decay or regulariser; and
* every operation that changes a mask or a weight (`set_masks`, `rewind`, ...)
  writing weight * mask itself.

Masks change only when a pruning algorithm calls `set_masks`.
"""

import collections

import numpy as np
import tensorflow as tf

from tensorflow_model_optimization.python.core.sparsity.keras import prunable_layer
from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry
from tf_tickets.keras import check_keras_object
from tf_tickets.keras import keras


def prunable_weights_of(layer):
  """The prunable weights of a built layer, as tfmot defines them ([] if none).

  Custom layers implement `tfmot.sparsity.keras.PrunableLayer`; built-in ones
  are looked up in tfmot's prune registry. Unknown layers are left dense.
  """
  if isinstance(layer, prunable_layer.PrunableLayer):
    return list(layer.get_prunable_weights())
  if prune_registry.PruneRegistry.supports(layer):
    if not hasattr(layer, 'get_prunable_weights'):
      prune_registry.PruneRegistry.make_prunable(layer)
    return list(layer.get_prunable_weights())
  return []


def is_prunable(layer):
  """True if the layer class has prunable weights according to tfmot."""
  if isinstance(layer, prunable_layer.PrunableLayer):
    return True
  reg = prune_registry.PruneRegistry
  if not reg.supports(layer):
    return False
  if layer.__class__ in reg._LAYERS_WEIGHTS_MAP:  # pylint: disable=protected-access
    return bool(reg._weight_names(layer))  # pylint: disable=protected-access
  return True  # RNN layers with supported cells.


def short_name(weight):
  name = weight.name.split(':')[0]
  return name.split('/')[-1]


def masked(w, mask):
  """w * mask with pruned entries +0.0 (not -0.0, not NaN): one fused op."""
  return tf.math.multiply_no_nan(w, tf.cast(mask, w.dtype))


class _MaskConstraint(keras.constraints.Constraint):
  """Applies the user's constraint (if any), then zeroes pruned entries.

  Keras optimizers call `var.constraint(var)` and assign the result right
  after every update, which is what keeps pruned weights at exactly zero.
  """

  def __init__(self, mask, inner=None):
    self.mask = mask
    self.inner = inner

  def __call__(self, w):
    if self.inner is not None:
      w = self.inner(w)
    # The per-step hot path: a plain multiply is the cheapest op here
    # (measured inside model.fit); pruned entries may hold -0.0, which equals
    # 0.0. strip() and mask changes write +0.0 via `masked`.
    return w * tf.cast(self.mask, w.dtype)


def _install_constraint(weight, constraint):
  """Sets `constraint` on a variable, on every replica of a distributed one."""
  components = getattr(weight, 'values', None)
  targets = list(components) if components is not None else [weight]
  if hasattr(weight, '_primary'):
    targets.append(weight._primary)  # pylint: disable=protected-access
  for v in targets:
    v._constraint = constraint  # pylint: disable=protected-access


def _user_constraint(weight):
  c = getattr(weight, 'constraint', None)
  return c.inner if isinstance(c, _MaskConstraint) else c


@keras.utils.register_keras_serializable(package='tf_tickets')
class TicketWrapper(keras.layers.Wrapper):
  """Wraps a layer with masks, theta_0 and a rewind point for its prunable weights.

  `prunable_weights`, `masks`, `initial_values` and `rewind_values` are
  aligned lists, one entry per prunable weight.
  """

  def __init__(self, layer, **kwargs):
    check_keras_object(layer, 'layer')
    if isinstance(layer, TicketWrapper):
      raise ValueError(f'layer {layer.name!r} is already a TicketWrapper')
    kwargs.setdefault('name', f'ticket_{layer.name}')
    super().__init__(layer, **kwargs)
    if not is_prunable(layer):
      raise ValueError(
          f'layer {layer.name!r} ({type(layer).__name__}) has no prunable '
          'weights: tfmot\'s prune registry does not list it and it does not '
          'implement tfmot.sparsity.keras.PrunableLayer')
    self._track_trackable(layer, name='layer')
    self.prunable_weights = []
    self.masks = []
    self.initial_values = []
    self.rewind_values = []

  def build(self, input_shape=None):
    if not self.layer.built:
      self.layer.build(input_shape)
    super().build(input_shape)
    self.prunable_weights = prunable_weights_of(self.layer)
    for i, w in enumerate(self.prunable_weights):
      short = short_name(w)
      common = dict(shape=w.shape, dtype=w.dtype, trainable=False,
                    synchronization=tf.VariableSynchronization.ON_WRITE,
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
      mask = self.add_weight(name=f'mask_{i}_{short}', initializer='ones',
                             **common)
      init = self.add_weight(name=f'initial_{i}_{short}',
                             initializer='zeros', **common)
      rew = self.add_weight(name=f'rewind_{i}_{short}', initializer='zeros',
                            **common)
      init.assign(w)  # theta_0: the weight as it is when wrapped.
      rew.assign(w)
      self.masks.append(mask)
      self.initial_values.append(init)
      self.rewind_values.append(rew)
      _install_constraint(w, _MaskConstraint(mask, _user_constraint(w)))

  def call(self, inputs, *args, **kwargs):
    # Stored weights equal weight * mask (see module docstring), so the inner
    # layer's own forward pass is the masked forward pass.
    return self.layer(inputs, *args, **kwargs)

  def compute_output_shape(self, input_shape):
    return self.layer.compute_output_shape(input_shape)

  # -- keys ------------------------------------------------------------------
  @property
  def keys(self):
    """One key per prunable weight: the layer name, or 'layer/weight'."""
    name = self.layer.name
    if len(self.prunable_weights) == 1:
      return [name]
    return [f'{name}/{short_name(w)}' for w in self.prunable_weights]

  # -- mask and weight updates (cross-replica context) --------------------------
  def set_masks(self, masks):
    """Sets new masks and zeroes the weights they prune."""
    for w, m, new in zip(self.prunable_weights, self.masks, masks):
      m.assign(tf.cast(new, m.dtype))
      w.assign(masked(w, m))

  def apply_masks(self):
    """Re-establishes weight == weight * mask (e.g. after `set_weights`)."""
    for w, m in zip(self.prunable_weights, self.masks):
      w.assign(masked(w, m))

  def set_weights_masked(self, values):
    """Assigns `values * mask` to the prunable weights."""
    for w, m, v in zip(self.prunable_weights, self.masks, values):
      v = tf.convert_to_tensor(v, w.dtype)
      w.assign(masked(v, m))


# ------------------------------------------------------------------------------
# Model-level helpers
# ------------------------------------------------------------------------------


def wrappers(model):
  """All TicketWrappers in a model, nested models included, each once."""
  check_keras_object(model)
  seen, out = set(), []

  def visit(layer):
    if id(layer) in seen:
      return
    seen.add(id(layer))
    if isinstance(layer, TicketWrapper):
      out.append(layer)
    elif isinstance(layer, keras.Model):
      for sub in layer.layers:
        visit(sub)

  visit(model)
  return out


def prunable_entries(model):
  """Ordered dict key -> (wrapper, index) over every prunable weight."""
  entries = collections.OrderedDict()
  for wr in wrappers(model):
    for i, key in enumerate(wr.keys):
      if key in entries:
        raise ValueError(f'two prunable weights share the key {key!r}; give '
                         'the layers unique names')
      entries[key] = (wr, i)
  return entries


def _copy_layer(layer):
  """A fresh layer built from `layer`'s config, holding `layer`'s weights."""
  new = layer.__class__.from_config(layer.get_config())
  return new


def wrap(model, dense_layers=(), wrap_layer=None, _top=True):
  """Returns a copy of `model` whose prunable layers are `TicketWrapper`s.

  Masks start all ones and theta_0 is the model's current weights. Nested
  models are wrapped recursively; shared layers stay shared. The returned
  model keeps theta_0 / theta_k of its other variables (biases,
  normalisation) for `rewind`: rewind that model, not a model built around
  it later.

  Args:
    model: a functional or Sequential tf_keras model.
    dense_layers: names of layers to leave unwrapped (dense).
    wrap_layer: optional predicate layer -> bool for finer control.
  """
  check_keras_object(model)
  if not isinstance(model, keras.Model):
    raise TypeError('wrap expects a tf_keras Model; wrap a single layer with '
                    'TicketWrapper(layer)')
  if not (model._is_graph_network or isinstance(model, keras.Sequential)):  # pylint: disable=protected-access
    raise TypeError(
        f'wrap needs a functional or Sequential model; {model.name!r} is a '
        'subclassed model. Wrap its layers with TicketWrapper directly.')
  dense_layers = set(dense_layers)
  known = {l.name for l in _all_layers(model)}
  unknown = dense_layers - known
  if unknown:
    raise ValueError(f'dense_layers names unknown layers {sorted(unknown)}; '
                     f'layers are {sorted(known)}')
  weights = {}

  def clone(layer):
    if isinstance(layer, keras.Model):
      return wrap(layer, dense_layers & {l.name for l in _all_layers(layer)},
                  wrap_layer, _top=False)
    new = _copy_layer(layer)
    weights[id(new)] = layer.get_weights()
    if (layer.name not in dense_layers and not isinstance(layer, TicketWrapper)
        and is_prunable(layer) and (wrap_layer is None or wrap_layer(layer))):
      return TicketWrapper(new)
    return new

  # Build the clone from the original weights so theta_0 is the model's init.
  new_model = keras.models.clone_model(model, clone_function=clone)
  for layer in new_model.layers:
    inner = layer.layer if isinstance(layer, TicketWrapper) else layer
    if weights.get(id(inner)):
      inner.set_weights(weights[id(inner)])
  for wr in wrappers(new_model):
    wr.set_masks([np.ones(m.shape) for m in wr.masks])
    for w, init, rew in zip(wr.prunable_weights, wr.initial_values,
                            wr.rewind_values):
      init.assign(w)
      rew.assign(w)
  if _top:
    _add_snapshot(new_model)
  return new_model


class Snapshot:
  """theta_0 and the rewind point of the variables the wrappers do not keep.

  `wrap()` adds, as weights of the wrapped model (so checkpoints hold them),
  one `initial` and one `rewind` copy of every other variable of the
  network: biases, normalisation parameters and statistics, unwrapped
  layers. With the wrappers' own copies of the prunable weights they make
  the whole network state at step 0 and at the rewind point.
  """

  def __init__(self, variables, initial, rewind):
    self.variables, self.initial, self.rewind = variables, initial, rewind


def bookkeeping(model):
  """ids of the variables that are not network state: masks, theta_0 and
  rewind copies (wrappers' and the snapshot's)."""
  out = set()
  for wr in wrappers(model):
    out.update(id(v) for v in wr.masks + wr.initial_values + wr.rewind_values)
  snap = snapshot(model)
  if snap is not None:
    out.update(id(v) for v in snap.initial + snap.rewind)
  return out


def snapshot(model):
  """The model's `Snapshot` (None for models not made by `wrap`)."""
  return getattr(model, '_tt_snapshot', None)


def _add_snapshot(model):
  skip = bookkeeping(model)
  for wr in wrappers(model):
    skip.update(id(v) for v in wr.prunable_weights)
  others = [v for v in model.weights if id(v) not in skip]
  initial, rewind = [], []
  common = dict(trainable=False, initializer='zeros',
                synchronization=tf.VariableSynchronization.ON_WRITE,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
  for i, v in enumerate(others):
    short = v.name.split(':')[0].replace('/', '.')
    for store, kind in ((initial, 'initial'), (rewind, 'rewind')):
      copy = model.add_weight(name=f'tt_{kind}_{i}_{short}', shape=v.shape,
                              dtype=v.dtype, **common)
      copy.assign(v)
      store.append(copy)
  # A plain attribute: Keras must not track the list (the copies are weights
  # of the model already).
  object.__setattr__(model, '_tt_snapshot', Snapshot(others, initial, rewind))


def _all_layers(model):
  out = []
  for l in model.layers:
    out.append(l)
    if isinstance(l, keras.Model):
      out.extend(_all_layers(l))
  return out


def strip(model):
  """Returns a plain tf_keras model with masked weights baked in."""
  check_keras_object(model)
  copies = []

  def clone(layer):
    if isinstance(layer, keras.Model):
      return strip(layer)  # copies its own weights
    new = _copy_layer(layer.layer if isinstance(layer, TicketWrapper) else layer)
    copies.append((layer, new))
    return new

  new_model = keras.models.clone_model(model, clone_function=clone)
  for src, dst in copies:
    if isinstance(src, TicketWrapper):
      values = {id(w): masked(w, m).numpy()
                for w, m in zip(src.prunable_weights, src.masks)}
      dst.set_weights([values.get(id(w), w.numpy()) for w in src.layer.weights])
    else:
      dst.set_weights(src.get_weights())
  return new_model
