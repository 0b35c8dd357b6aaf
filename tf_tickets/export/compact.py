"""A ticket as a smaller dense network: empty units and channels removed.

`compact_model(model, examples)` takes a wrapped (or stripped) functional or
Sequential tf_keras model and returns `(smaller, report)`: a plain model
whose outputs equal the masked model's (float32 round-off only) with
every unit that does nothing removed:

* a unit with no inputs (its kernel column is all zero) outputs a constant
  (its bias through what follows: activation, BatchNorm, pooling); it
  leaves, and the constant times its outgoing weights is folded into each
  next layer's bias (a 'same'-padded convolution sees zeros at the border:
  there the folded constants differ by position and go into a
  `FoldedConv2D`, a Conv2D with a fixed bias per position);
* a unit with no outputs (every next layer's weights from it are zero)
  leaves with its column, bias and BatchNorm entries.

Channels that pass through per-channel layers (activations, BatchNorm,
dropout, pooling, Flatten) keep their identity; the inputs and output of
an `Add` share one channel space, so a residual channel leaves only when
every branch drops it. The model's inputs and outputs, and the channels
of any other layer (concatenation, reshape, depthwise convolution, ...),
are kept. Every constant folded is checked on `examples` (constant over
examples and positions), and so is the result (`report['parity']`).
"""
import collections

import numpy as np
import tensorflow as tf

from tf_tickets import flops
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.errors import TicketsError
from tf_tickets.keras import keras

L = keras.layers
_PASS = (L.BatchNormalization, L.Activation, L.ReLU, L.LeakyReLU, L.ELU,
         L.Dropout, L.SpatialDropout2D, L.MaxPooling2D, L.AveragePooling2D,
         L.GlobalAveragePooling2D, L.GlobalMaxPooling2D, L.Flatten, L.Add)


@keras.utils.register_keras_serializable('tf_tickets')
class FoldedConv2D(L.Conv2D):
  """A Conv2D with a bias per output position as well (`position_bias`,
  not trained): what constant input channels removed from a 'same'-padded
  convolution contribute, which differs at the border (the padding is
  zeros). Exact; in TFLite one ADD of a constant after the convolution."""

  def __init__(self, bias_shape=(1, 1, 1), **kwargs):
    super().__init__(**kwargs)
    self.bias_shape = tuple(int(d) for d in bias_shape)

  def build(self, input_shape):
    super().build(input_shape)
    self.position_bias = self.add_weight(
        name='position_bias', shape=self.bias_shape, initializer='zeros',
        trainable=False)

  def call(self, inputs):
    outputs = self.convolution_op(inputs, self.kernel)
    if self.use_bias:
      outputs = tf.nn.bias_add(outputs, self.bias)
    return self.activation(outputs + self.position_bias)

  def get_config(self):
    return dict(super().get_config(), bias_shape=self.bias_shape)


_WEIGHTED = (L.Dense, L.Conv2D, FoldedConv2D)
# Activations that act on each channel alone (anything else, e.g. softmax,
# ties the channels together).
_ELEMENTWISE = ('linear', 'relu', 'relu6', 'elu', 'selu', 'sigmoid',
                'hard_sigmoid', 'tanh', 'swish', 'silu', 'gelu', 'softplus',
                'softsign', 'exponential', 'leaky_relu', 'mish')


def _elementwise(layer):
  activation = getattr(layer, 'activation', None)
  return activation is None or getattr(activation, '__name__',
                                       None) in _ELEMENTWISE


def _channels_last(layer):
  if getattr(layer, 'data_format', 'channels_last') != 'channels_last':
    return False
  if isinstance(layer, L.BatchNormalization):
    return list(layer.axis) == [len(layer.input.shape) - 1]
  return True


def _is_weighted(layer):
  return (type(layer) in _WEIGHTED and getattr(layer, 'groups', 1) == 1
          and _channels_last(layer))


def _passes(layer, inputs, flat):
  """A layer whose output channels are its inputs' channels."""
  if not (isinstance(layer, _PASS) and _elementwise(layer)
          and _channels_last(layer)):
    return False
  if isinstance(layer, L.Add):  # a broadcasting add mixes widths
    return len({int(t.shape[-1]) for t in layer.input}) == 1
  # After a Flatten, BatchNormalization has one entry per feature.
  return not (isinstance(layer, L.BatchNormalization) and inputs[0] in flat)


class _Spaces:
  """Union-find of the channel spaces of the layers' outputs."""

  def __init__(self):
    self.parent = {}

  def find(self, name):
    self.parent.setdefault(name, name)
    while self.parent[name] != name:
      self.parent[name] = self.parent[self.parent[name]]
      name = self.parent[name]
    return name

  def union(self, a, b):
    self.parent[self.find(a)] = self.find(b)


def _inbound(layer):
  if len(layer._inbound_nodes) != 1:
    raise TicketsError(f'compact: layer {layer.name!r} is called '
                       f'{len(layer._inbound_nodes)} times; a compact model '
                       'needs every layer called once')
  return [t._keras_history.layer for t in
          layer._inbound_nodes[0].keras_inputs]


def _channels(layer):
  return int(layer.output.shape[-1])


def _graph(model):
  """(spaces, inputs of each layer, the spaces that must stay whole, the
  layers whose output is a flattened view of a space)."""
  spaces, inputs, kept, flat = _Spaces(), {}, set(), set()
  for layer in model.layers:
    if isinstance(layer, keras.Model):
      raise TicketsError(f'compact: nested model {layer.name!r}; flatten it '
                         'into one functional model first')
    inputs[layer.name] = [] if isinstance(layer, L.InputLayer) else [
        p.name for p in _inbound(layer)]
    spaces.find(layer.name)
    if isinstance(layer, L.InputLayer):
      kept.add(layer.name)
    elif _is_weighted(layer):
      if not _elementwise(layer):  # e.g. a softmax output: keep its units
        kept.add(layer.name)
    elif _passes(layer, inputs[layer.name], flat):
      for name in inputs[layer.name]:
        spaces.union(layer.name, name)
      if isinstance(layer, L.Flatten) or inputs[layer.name][0] in flat:
        flat.add(layer.name)
    else:  # anything else: its inputs and output stay whole
      kept.update([layer.name] + inputs[layer.name])
  for t in model.outputs:
    kept.add(t._keras_history.layer.name)
  return spaces, inputs, {spaces.find(n) for n in kept}, flat


def _rows(consumer, flat_from, channels):
  """Per input channel, the consumer's kernel as (channels, entries)."""
  kernel = consumer.get_weights()[0]
  if isinstance(consumer, L.Dense):
    if flat_from:  # Flatten: row p * C + c
      return kernel.reshape(-1, channels, kernel.shape[-1]).transpose(
          1, 0, 2).reshape(channels, -1)
    return kernel
  return kernel.transpose(2, 0, 1, 3).reshape(channels, -1)


def _plan(model, examples):
  """(per space that loses channels: its width, the channels kept and the
  constant ones folded, the graph, every consumer's input on
  `examples`)."""
  layers = {layer.name: layer for layer in model.layers}
  spaces, inputs, kept_spaces, flat = _graph(model)
  producers = collections.defaultdict(list)
  consumers = collections.defaultdict(list)
  for name, layer in layers.items():
    if _is_weighted(layer):
      producers[spaces.find(name)].append(layer)
      consumers[spaces.find(inputs[name][0])].append(layer)
  probe = keras.Model(model.inputs, [layer.input for c in consumers.values()
                                     for layer in c])
  values = probe(examples, training=False)
  values = [np.asarray(values)] if len(probe.outputs) == 1 else [
      np.asarray(v) for v in values]
  seen_inputs = dict(zip([layer.name for c in consumers.values()
                          for layer in c], values))
  plan = {}
  for space in list(producers):
    if space in kept_spaces:
      continue
    width = _channels(layers[producers[space][0].name])
    empty_in = np.ones(width, bool)
    for p in producers[space]:
      empty_in &= ~np.any(p.get_weights()[0].reshape(-1, width), axis=0)
    ignored = np.ones(width, bool)
    for c in consumers[space]:
      flat_in = inputs[c.name][0] in flat
      ignored &= ~np.any(_rows(c, flat_in, width), axis=1)
    constant = empty_in & ~ignored
    for c in consumers[space]:
      x = seen_inputs[c.name].reshape(len(examples), -1, width)
      spread = np.ptp(x, axis=(0,) if isinstance(c, L.Dense) and inputs[
          c.name][0] in flat else (0, 1))
      unknown = isinstance(c, L.Conv2D) and None in c.input.shape[1:-1]
      for j in np.flatnonzero(constant):
        if unknown or np.any(spread[..., j] > 0):
          constant[j] = False  # not constant where this consumer reads it
    remove = ignored | constant
    if remove.all():  # a layer keeps at least one unit
      remove[0] = constant[0] = False
    plan[space] = dict(keep=np.flatnonzero(~remove), width=width,
                       fold=np.flatnonzero(constant & ~ignored))
  return plan, spaces, inputs, seen_inputs, flat


def _new_weights(model, plan, spaces, inputs, seen_inputs, flat):
  """Layer name -> (config changes, new weight arrays)."""
  layers = {layer.name: layer for layer in model.layers}
  out = {}
  for name, layer in layers.items():
    weights = layer.get_weights()
    changes = {}
    own = plan.get(spaces.find(name))
    if own is not None and (_is_weighted(layer) or isinstance(
        layer, L.BatchNormalization)):
      keep = own['keep']
      weights = [w[..., keep] for w in weights]
      if _is_weighted(layer):
        changes['units' if isinstance(layer, L.Dense) else 'filters'] = int(
            keep.size)
        if isinstance(layer, FoldedConv2D):
          changes['bias_shape'] = weights[-1].shape
    source = plan.get(spaces.find(inputs[name][0])) if inputs[name] else None
    if _is_weighted(layer) and source is not None:
      width, keep, fold = source['width'], source['keep'], source['fold']
      kernel = weights[0]
      x = seen_inputs[name][0]
      if isinstance(layer, L.Dense):
        flat_in = inputs[name][0] in flat
        rows = kernel.reshape(-1, width, kernel.shape[-1]) if flat_in else (
            kernel[None])
        xs = x.reshape(-1, width) if flat_in else x.reshape(-1, width)[:1]
        if fold.size:
          weights = _with_bias(layer, weights, changes)
          weights[1] = weights[1] + np.einsum(
              'pc,pcu->u', xs[:, fold], rows[:, fold])
        weights[0] = rows[:, keep].reshape(-1, kernel.shape[-1])
      else:
        if fold.size:
          weights = _fold_conv(layer, weights, changes, x.reshape(
              -1, width)[0, fold], kernel[:, :, fold, :])
        weights[0] = kernel[:, :, keep, :]
    out[name] = (changes, weights)
  return out


def _with_bias(layer, weights, changes):
  """`weights` with a bias (zeros added, and the config changed, for a
  layer built without one), to fold constants into."""
  if layer.use_bias or changes.get('use_bias'):
    return weights
  changes['use_bias'] = True
  return [weights[0], np.zeros(weights[0].shape[-1], weights[0].dtype)
          ] + list(weights[1:])


def _fold_conv(layer, weights, changes, constants, kernel):
  """Folds constant input channels (values `constants`, their `kernel`
  slice) into a convolution: into its bias where their contribution is
  the same at every position, else into a `FoldedConv2D` position bias."""
  shape = (1,) + tuple(layer.input.shape[1:-1]) + (len(constants),)
  contribution = tf.nn.convolution(
      tf.fill(shape, 0.0) + tf.constant(constants, tf.float32), kernel,
      strides=layer.strides, padding=layer.padding.upper(),
      dilations=layer.dilation_rate).numpy()[0]
  weights = list(weights)
  if isinstance(layer, FoldedConv2D):
    weights[-1] = weights[-1] + contribution
  elif np.ptp(contribution.reshape(-1, contribution.shape[-1]),
              axis=0).max() == 0:
    weights = _with_bias(layer, weights, changes)
    weights[1] = weights[1] + contribution[0, 0]
  else:
    changes['__class__'] = FoldedConv2D
    changes['bias_shape'] = contribution.shape
    weights.append(contribution)
  return weights


def compact_model(model, examples):
  """(the smaller dense model, its report); see the module docstring.

  Args:
    model: a wrapped or plain functional / Sequential tf_keras model.
    examples: a batch of inputs (numpy) the constants and parity are
      checked on.
  """
  if wrapper_lib.wrappers(model):
    model = wrapper_lib.strip(model)
  if not getattr(model, 'outputs', None):
    raise TicketsError('compact: the model has no traced inputs and '
                       'outputs (a subclassed model?); build it as a '
                       'functional or Sequential model')
  examples = np.asarray(examples)
  smaller, removed = model, True
  while removed:  # a removed unit can empty the next one: until none leaves
    smaller, removed = _rebuilt(smaller, examples)
  return smaller, report(model, smaller, examples)


def _rebuilt(model, examples):
  """One pass: (the model without the units `_plan` finds removable,
  whether there were any)."""
  plan = _plan(model, examples)
  if all(p['keep'].size == p['width'] for p in plan[0].values()):
    return model, False
  new = _new_weights(model, *plan)

  def clone(layer):
    changes = dict(new[layer.name][0])
    cls = changes.pop('__class__', type(layer))
    return cls.from_config(dict(layer.get_config(), **changes))

  smaller = keras.models.clone_model(model, clone_function=clone)
  for layer in smaller.layers:
    layer.set_weights(new[layer.name][1])
  return smaller, True


def multiply_adds(model):
  """Per Dense / Conv2D layer: multiply-adds per example."""
  out = {}
  for layer in model.layers:
    if isinstance(layer, _WEIGHTED):
      out[layer.name] = flops.positions(layer) * int(
          layer.get_weights()[0].size)
  return out


def report(model, smaller, examples):
  """Widths, multiply-adds, parameter bytes and parity of `smaller`."""
  before, after = multiply_adds(model), multiply_adds(smaller)
  layers = {}
  for layer in smaller.layers:
    if layer.name in before:
      layers[layer.name] = dict(
          width_before=_channels(model.get_layer(layer.name)),
          width_after=_channels(layer), macs_before=before[layer.name],
          macs_after=after[layer.name])
  ref = np.asarray(model(examples, training=False), np.float64)
  got = np.asarray(smaller(examples, training=False), np.float64)
  scale = max(float(np.max(np.abs(ref))), 1e-12)
  return dict(
      layers=layers, macs_before=sum(before.values()),
      macs_after=sum(after.values()),
      bytes_before=4 * model.count_params(),
      bytes_after=4 * smaller.count_params(),
      parity=dict(max_abs=float(np.max(np.abs(ref - got))),
                  max_rel=float(np.max(np.abs(ref - got)) / scale),
                  examples=int(len(examples))))


def format_report(rep):
  """The report as text lines."""
  lines = ['layer: width before -> after, multiply-adds before -> after']
  for name, r in rep['layers'].items():
    lines.append(f"  {name}: {r['width_before']} -> {r['width_after']}, "
                 f"{r['macs_before']:,} -> {r['macs_after']:,}")
  p = rep['parity']
  lines.append(
      f"total multiply-adds {rep['macs_before']:,} -> {rep['macs_after']:,} "
      f"({rep['macs_after'] / max(rep['macs_before'], 1):.3f}); parameter "
      f"bytes {rep['bytes_before']:,} -> {rep['bytes_after']:,}; parity "
      f"max relative {p['max_rel']:.2e} on {p['examples']} examples")
  return lines
