"""Mask views: what a mask says about where a ticket looks.

A 784x300 mask drawn as an image is noise; these views aggregate it along
the axes that mean something:

* `input_connections`: for a Dense layer fed by a Flatten of an (H, W, C)
  tensor (LeNet's fc1 on the 28x28 image, conv nets' first dense layer on
  the last feature map), the number of surviving connections leaving each
  input position, summed over channels and units: an (H, W) image of the
  input showing where the ticket looks (`connections_image` scales it so
  white is the best-connected position, black a position with no
  connection left).
* `unit_density`: per output unit (Dense) / per filter (Conv), the fraction
  of its weights that survive; units at 0 are cut off from their input.

`image_inputs(model, entries)` finds the (H, W, C) of each Dense layer's
flattened input from the Keras graph (the layer's inbound Flatten), or, for
models without a graph, from the model's input shape when the kernel's input
size equals H * W * C.
"""
import math

import numpy as np

from tf_tickets.keras import keras
from tf_tickets.wrapper import short_name

MIN_IMAGE_SIDE = 112  # small images are enlarged (whole pixels) to this


def unit_axes(layer, weight):
  """The axes of `weight` that index output units: (-1,) for Dense and
  Conv, (-2,) for transposed convolutions (kernel (..., out, in)), (-2, -1)
  for depthwise kernels (one unit per input channel and multiplier)."""
  rank = len(weight.shape)
  if rank < 2:
    return (-1,)
  if short_name(weight) == 'depthwise_kernel' and rank >= 3:
    return (-2, -1)
  if type(layer).__name__.endswith('Transpose'):
    return (-2,)
  return (-1,)


def unit_density(mask, axes=(-1,)):
  """The fraction of surviving weights of each output unit (flat)."""
  m = np.asarray(mask) > 0
  axes = sorted(a % m.ndim for a in axes) if m.ndim else []
  rest = [a for a in range(m.ndim) if a not in axes]
  m = np.transpose(m, rest + axes)
  units = int(np.prod([m.shape[len(rest) + i] for i in range(len(axes))]))
  m = m.reshape(-1, max(units, 1))
  return m.mean(axis=0) if m.shape[0] else np.ones(m.shape[1])


def input_connections(mask, shape):
  """(H, W) surviving connections per input position of a Dense kernel
  (H*W*C, units) whose input is a flattened (H, W, C) tensor."""
  h, w, c = shape
  m = (np.asarray(mask) > 0).reshape(h, w, c, -1)
  return m.sum(axis=(2, 3))


def connections_image(counts, max_side=512):
  """`counts` as a grey image in [0, 1] (white = the largest count, black =
  0), enlarged by a whole factor to at least MIN_IMAGE_SIDE a side and
  block-averaged down to at most `max_side`."""
  counts = np.asarray(counts, np.float32)
  top = float(counts.max()) if counts.size else 0.0
  image = counts / top if top > 0 else np.zeros_like(counts)
  return fit_image(image, max_side)


def fit_image(image, max_side=512, min_side=MIN_IMAGE_SIDE):
  """A 2-D image enlarged by a whole factor (nearest pixel) while its longer
  side stays within min(min_side, max_side), or reduced by a whole factor
  with block averaging when a side exceeds `max_side`."""
  m = np.asarray(image, np.float32)
  if m.ndim != 2 or not m.size:
    raise ValueError(f'expected a non-empty 2-D image, got shape {m.shape}')
  h, w = m.shape
  up = max(1, min(min_side, max_side) // max(h, w))
  if up > 1:
    return np.repeat(np.repeat(m, up, axis=0), up, axis=1)
  fh, fw = math.ceil(h / max_side), math.ceil(w / max_side)
  if fh == 1 and fw == 1:
    return m
  ph, pw = -h % fh, -w % fw
  total = np.pad(m, ((0, ph), (0, pw)))
  count = np.pad(np.ones_like(m), ((0, ph), (0, pw)))
  blocks = (total.shape[0] // fh, fh, total.shape[1] // fw, fw)
  return (total.reshape(blocks).sum((1, 3))
          / count.reshape(blocks).sum((1, 3)))


# ------------------------------------------------------------------------------
# Where a Dense layer's input comes from
# ------------------------------------------------------------------------------


def _inbound_layer(layer):
  """The one layer feeding `layer` in its (first) Keras graph node."""
  try:
    nodes = layer.inbound_nodes
    inbound = nodes[0].inbound_layers if nodes else None
  except (AttributeError, IndexError, ValueError):
    return None
  if isinstance(inbound, (list, tuple)):
    return inbound[0] if len(inbound) == 1 else None
  return inbound


def _hwc(shape, channels_first=False):
  try:
    dims = tuple(int(d) for d in shape[1:])
  except (TypeError, ValueError):
    return None
  if len(dims) != 3 or min(dims) < 1:
    return None
  return (dims[1], dims[2], dims[0]) if channels_first else dims


def image_inputs(model, entries):
  """{key: (H, W, C)} for every rank-2 prunable weight whose input is a
  flattened (H, W, C) tensor (Flatten flattens channels-last)."""
  try:
    model_shape = _hwc(model.input_shape)
  except (AttributeError, ValueError):
    model_shape = None
  out = {}
  for key, (wr, i) in entries.items():
    weight = wr.prunable_weights[i]
    if len(weight.shape) != 2 or not isinstance(
        wr.layer, keras.layers.Dense):
      continue
    rows = int(weight.shape[0])
    source = _inbound_layer(wr)
    shape = None
    if isinstance(source, keras.layers.Flatten):
      try:
        shape = _hwc(source.input_shape,
                     getattr(source, 'data_format', '') == 'channels_first')
      except (AttributeError, ValueError):
        shape = None
    elif source is None and model_shape is not None:
      shape = model_shape  # no graph: the model input, if the size fits
    if shape is not None and int(np.prod(shape)) == rows:
      out[key] = shape
  return out


# ------------------------------------------------------------------------------
# Views across lottery levels
# ------------------------------------------------------------------------------


def stretch(values):
  """`values` scaled to [0, 1] from their minimum to their maximum (all
  0.5 if constant): the structure of a map shows at any density."""
  v = np.asarray(values, np.float32)
  lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
  return (v - lo) / (hi - lo) if hi > lo else np.full_like(v, 0.5)


def level_grid(maps, columns=4, max_side=1024):
  """Per-level (H, W) maps side by side, row-major in level order, each
  stretched to its own range (white = that level's best-connected
  position), on a grey background with 1-pixel gaps; enlarged by a whole
  factor so that a map is at least MIN_IMAGE_SIDE a side."""
  maps = [stretch(m) for m in maps]
  h, w = maps[0].shape
  up = max(1, MIN_IMAGE_SIDE // max(h, w))
  h, w = h * up, w * up
  cols = min(columns, len(maps))
  rows = math.ceil(len(maps) / cols)
  grid = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), 0.5, np.float32)
  for i, m in enumerate(maps):
    r, c = divmod(i, cols)
    grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = (
        np.repeat(np.repeat(m, up, axis=0), up, axis=1))
  return fit_image(grid, max_side, min_side=1)


def unit_rows(densities, row_height=12, width=600):
  """Per-level unit densities (one 1-D array per level, units in a fixed
  order) as an image: one band of `row_height` pixels per level, one
  column (a whole number of pixels wide) per unit, grey = the unit's
  surviving fraction relative to that level's best-connected unit (black:
  a unit with no weight left). The same unit is the same column at every
  level, so units dying level after level show as dark columns."""
  rows = []
  for d in densities:
    d = np.asarray(d, np.float32).reshape(-1)
    top = float(d.max()) if d.size else 0.0
    rows.append(d / top if top > 0 else np.zeros_like(d))
  image = np.stack(rows)
  cell = max(1, width // image.shape[1])
  return np.repeat(np.repeat(image, row_height, axis=0), cell, axis=1)
