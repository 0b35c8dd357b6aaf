"""TensorBoard sparsity dashboards: what every run logs.

Every network that `experiment.Context.train` trains gets a `SummaryHook`
(unless `summaries.enabled = False`). It writes to the network's writer
(event files in the network directory, e.g. `RUN/level_3/`):

  density/<key>, density/total        fraction of prunable weights active
  sparsity/<key>, sparsity/total      1 - density
  weights/<key>                       histogram of the *active* weights
  masks/<key>                         the mask as a grey image (white =
                                      active); 2-D kernels as they are
                                      (rows = inputs, columns = outputs),
                                      conv kernels folded to
                                      (kh*kw*cin, cout); images larger than
                                      `summaries.image_size` are reduced by
                                      block averaging (grey = block density)

Density scalars are written at the start, every `summaries.every` steps
(default 1000), at every mask change and at the end; histograms at the
start, every `summaries.every` steps and at the end; mask images at the
start, at mask changes (at most one set per `summaries.image_every` steps,
default `summaries.every`; 0 for every change) and at the end.
`summaries.enabled = False` turns all of this off.

Sparse-training runs (hooks that call `Trainer.mask_updated`) add, per mask
update and per layer, every numeric figure of the update's stats under
`sparse_training/<figure>/<key>` (dropped, grown, churn, drop_fraction, ...)
with `/total` sums for counts, `sparse_training/cumulative_grown/<key>`, and
at the end `sparse_training/grown_survival/<key>` and `/total`: the fraction
of the connections grown during training that are active at the end (the
total is the result's 'grown_survival' when the algorithm reports it; the
per-layer figures count growth seen since this process started the network,
so they restart after a resume).

The values of one step are built on the host and written with one op
(`Batch`): an interval write costs a few milliseconds for LeNet-300-100
(see tools/bench_summaries.py).

Lottery runs (`LevelSummaries`) keep a run-level writer in `RUN/lottery/`
(`RUN/branch_<name>/lottery/` for control branches) with, per level:

  lottery/{density,test_accuracy,early_stop_step,early_stop_test_accuracy}
      at step = level;
  lottery_by_density/{test_accuracy,early_stop_step,early_stop_test_accuracy}
      at step = round(10000 * density), i.e. the percent of weights remaining
      in hundredths of a percent (TensorBoard's x axis is an integer step and
      grows to the right: 10000 is dense, 360 is 3.6% of the weights);
  lottery/jaccard/<key>, /total: |m_L & m_L-1| / |m_L | m_L-1|, the mask
      overlap with the previous level (of the same branch);
  lottery/rewind_distance/<key>, /total: L2 distance of the level's trained
      prunable weights from its starting weights (the rewind point * mask);
      lottery/rewind_distance_relative/total divides by the start's norm;
  lottery/levels: a text table of all levels so far.

`write_layout(run_dir)` writes, once per run directory, a custom-scalars
layout with "Sparsity", "Lottery" and "Sparse training" sections, so
`tensorboard --logdir runs/` shows these charts grouped (CUSTOM SCALARS tab).
"""

import glob
import math
import os

import gin
import numpy as np
import tensorflow as tf

from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import summary as cs_summary
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tf_tickets import training
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.errors import ConfigError

TOTAL = 'total'
DENSITY_STEP_SCALE = 10000  # lottery_by_density step = round(scale * density)
_COUNT_FIGURES = ('dropped', 'grown')


def _metadata(plugin):
  return tf.compat.v1.SummaryMetadata.FromString(
      plugin.create_summary_metadata(display_name=None,
                                     description=None).SerializeToString())


_SCALAR_METADATA = _metadata(scalar_metadata)
_HISTOGRAM_METADATA = _metadata(histogram_metadata)
_IMAGE_METADATA = _metadata(image_metadata)


@gin.configurable('summaries')
def summaries_config(enabled=True, every=1000, histograms=True,
                     mask_images=True, image_every=None, image_size=512):
  """Summary settings (gin: `summaries.*`).

  Args:
    enabled: write the sparsity summaries (the loop's training loss and
      evaluation scalars are written regardless).
    every: interval of the sparsity scalars and weight histograms: steps,
      'Nit' or 'Nep'; 0 writes them only at the start, on mask changes and
      at the end.
    histograms: write histograms of the active prunable weights.
    mask_images: write mask images (at the start, on mask changes, at the
      end).
    image_every: least number of steps between two mask images written on
      mask changes (None: `every`; 0: at every mask change). Images at the
      start and the end are always written.
    image_size: largest mask image side; larger masks are block-averaged.
  """
  if isinstance(image_size, bool) or not isinstance(image_size, int) or (
      image_size < 1):
    raise ConfigError('summaries.image_size', f'must be an integer >= 1, got '
                      f'{image_size!r}')
  training.parse_steps(every, 1, 'summaries.every')  # validates the form
  if image_every is not None:
    training.parse_steps(image_every, 1, 'summaries.image_every')
  return dict(enabled=bool(enabled), every=every, histograms=bool(histograms),
              mask_images=bool(mask_images), image_every=image_every,
              image_size=image_size)


def default_hooks():
  """The summary hooks every network gets (none if disabled in gin)."""
  cfg = summaries_config()
  if not cfg.pop('enabled'):
    return []
  return [SummaryHook(**cfg)]


# ------------------------------------------------------------------------------
# Pure helpers
# ------------------------------------------------------------------------------


def fold_to_2d(array):
  """A weight as a 2-D matrix: (rows, cols) = (prod(shape[:-1]), shape[-1])."""
  a = np.asarray(array)
  if a.ndim == 0:
    return a.reshape(1, 1)
  if a.ndim == 1:
    return a.reshape(1, -1)
  return a.reshape(-1, a.shape[-1])


def mask_image(mask, max_size=512):
  """The mask as a float32 (H, W) image in [0, 1], at most max_size a side.

  2-D masks keep their layout; higher-rank ones are folded by `fold_to_2d`.
  A side longer than `max_size` is reduced by an integer factor with block
  averaging, so a grey pixel shows the density of its block.
  """
  m = fold_to_2d(mask).astype(np.float32)
  h, w = m.shape
  fh, fw = math.ceil(h / max_size), math.ceil(w / max_size)
  if (fh > 1 or fw > 1) and h % fh == 0 and w % fw == 0:
    m = m.reshape(h // fh, fh, w // fw, fw).mean((1, 3))
  elif fh > 1 or fw > 1:
    ph, pw = -h % fh, -w % fw
    total = np.pad(m, ((0, ph), (0, pw)))
    count = np.pad(np.ones_like(m), ((0, ph), (0, pw)))
    shape = (total.shape[0] // fh, fh, total.shape[1] // fw, fw)
    m = total.reshape(shape).sum((1, 3)) / count.reshape(shape).sum((1, 3))
  return m


def jaccard(a, b):
  """|a & b| / |a | b| of two 0/1 masks (1.0 if both are empty)."""
  a, b = np.asarray(a) > 0, np.asarray(b) > 0
  union = np.count_nonzero(a | b)
  return np.count_nonzero(a & b) / union if union else 1.0


def density_step(density):
  """The integer TensorBoard step of a density (hundredths of a percent)."""
  return int(round(DENSITY_STEP_SCALE * float(density)))


def _masks(entries):
  return {k: wr.masks[i].numpy() for k, (wr, i) in entries.items()}


def _weights(entries):
  return {k: wr.prunable_weights[i].numpy() for k, (wr, i) in entries.items()}


def _number(value):
  """value as a float if it is a finite-or-not real number, else None."""
  if isinstance(value, bool):
    return float(value)
  if isinstance(value, (int, float, np.integer, np.floating)):
    return float(value)
  if isinstance(value, np.ndarray) and value.size == 1:
    return float(value.reshape(()))
  return None


# ------------------------------------------------------------------------------
# Per-network summaries
# ------------------------------------------------------------------------------


class SummaryHook(training.Hook):
  """Writes sparsity scalars, histograms and mask images of one network.

  `Context.train` appends it after the algorithm hooks, so it sees masks set
  in their `begin`. See the module docstring for the tags.
  """

  def __init__(self, every=1000, histograms=True, mask_images=True,
               image_size=512, image_every=None):
    self.every_setting = every
    self.image_every_setting = every if image_every is None else image_every
    self.histograms, self.mask_images = histograms, mask_images
    self.image_size = image_size
    self.every = self.image_every = 0
    self.writer = None
    self.entries = None
    self._last = {}  # what -> last step written (no duplicates per step)
    self._prev = None  # masks after the last update, as bool arrays
    self._ever_grown = None
    self._cumulative = {}
    self._updates = 0

  # -- hook API ------------------------------------------------------------
  def begin(self, trainer):
    self._setup(trainer)
    if self.writer is not None:
      self._write_state(int(trainer.step_var.numpy()), histograms=True,
                        images=True)

  def after_step(self, trainer, step, grads):
    if self.writer is not None and self.every and step % self.every == 0:
      self._write_state(step, histograms=True)

  def on_mask_update(self, trainer, step, stats):
    if self.entries is None:  # masks changed in a `begin` before ours
      self._setup(trainer)
    if self.writer is None:
      return
    last_image = self._last.get('images')
    images = (last_image is None or not self.image_every
              or step - last_image >= self.image_every)
    batch = Batch()
    masks = self._add_state(batch, step, images=images)
    self._updates += 1
    totals = {}
    for key, figures in (stats or {}).items():
      figures = dict(figures or {})
      for name, value in figures.items():
        value = _number(value)
        if value is None:
          continue
        batch.scalar(f'sparse_training/{name}/{key}', value)
        if name in _COUNT_FIGURES:
          totals[name] = totals.get(name, 0.0) + value
      grown = _number(figures.get('grown'))
      if grown is not None:
        self._cumulative[key] = self._cumulative.get(key, 0.0) + grown
        batch.scalar(f'sparse_training/cumulative_grown/{key}',
                     self._cumulative[key])
    for name, value in totals.items():
      batch.scalar(f'sparse_training/{name}/{TOTAL}', value)
    batch.write(self.writer, step)
    for key, m in masks.items():
      now = m > 0
      if key in self._prev:
        self._ever_grown[key] |= now & ~self._prev[key]
      self._prev[key] = now

  def end(self, trainer, result):
    if self.writer is None:
      return
    step = int(result.get('steps', trainer.step_var.numpy()))
    batch = Batch()
    masks = self._add_state(batch, step, histograms=True, images=True)
    if self._updates:
      self._add_survival(batch, masks, result)
    batch.write(self.writer, step)
    self.writer.flush()

  # -- internals -------------------------------------------------------------
  def _setup(self, trainer):
    self.writer = None if callable(trainer.writer) else trainer.writer
    self.entries = wrapper_lib.prunable_entries(trainer.model)
    if not self.entries:
      self.writer = None
      return
    spe = trainer.data.steps_per_epoch
    self.every = training.parse_steps(self.every_setting, spe,
                                      'summaries.every')
    self.image_every = training.parse_steps(self.image_every_setting, spe,
                                            'summaries.image_every')
    masks = _masks(self.entries)
    self._prev = {k: m > 0 for k, m in masks.items()}
    self._ever_grown = {k: np.zeros(m.shape, bool) for k, m in masks.items()}

  def _once(self, what, step):
    if self._last.get(what) == step:
      return False
    self._last[what] = step
    return True

  def _write_state(self, step, histograms=False, images=False):
    batch = Batch()
    masks = self._add_state(batch, step, histograms, images)
    batch.write(self.writer, step)
    return masks

  def _add_state(self, batch, step, histograms=False, images=False):
    """Density scalars, histograms and images (each at most once a step)."""
    masks = _masks(self.entries)
    if self._once('scalars', step):
      active = total = 0
      for key, m in masks.items():
        a = int(np.count_nonzero(m))
        active += a
        total += m.size
        batch.scalar(f'density/{key}', a / m.size)
        batch.scalar(f'sparsity/{key}', 1.0 - a / m.size)
      density = active / total if total else 1.0
      batch.scalar(f'density/{TOTAL}', density)
      batch.scalar(f'sparsity/{TOTAL}', 1.0 - density)
    if histograms and self.histograms and self._once('histograms', step):
      weights = _weights(self.entries)
      for key, m in masks.items():
        batch.histogram(f'weights/{key}', weights[key][m > 0])
    if images and self.mask_images and self._once('images', step):
      for key, m in masks.items():
        batch.image(f'masks/{key}', mask_image(m, self.image_size))
    return masks

  def _add_survival(self, batch, masks, result):
    grown_total = alive_total = 0
    for key, m in masks.items():
      ever = self._ever_grown[key]
      n = int(np.count_nonzero(ever))
      alive = int(np.count_nonzero(ever & (m > 0)))
      grown_total += n
      alive_total += alive
      if n:
        batch.scalar(f'sparse_training/grown_survival/{key}', alive / n)
    reported = _number(result.get('grown_survival'))
    if 'grown_survival' not in result and grown_total:
      reported = alive_total / grown_total
      result['grown_survival'] = reported
    if reported is not None:
      batch.scalar(f'sparse_training/grown_survival/{TOTAL}', reported)


class Batch:
  """Summary values built on the host and written with one op.

  The values are what `tf.summary.scalar` / `histogram` / `image` write
  (tensor summaries with the plugins' metadata), but one `write_raw_pb`
  call writes them all: much cheaper than one eager summary op per value.
  """

  def __init__(self):
    self.summary = tf.compat.v1.Summary()

  def _add(self, tag, metadata, array):
    value = self.summary.value.add(tag=tag)
    value.metadata.CopyFrom(metadata)
    value.tensor.CopyFrom(tf.make_tensor_proto(array))

  def scalar(self, tag, value):
    self._add(tag, _SCALAR_METADATA, np.float32(value))

  def histogram(self, tag, values, buckets=30):
    """Buckets as `tf.summary.histogram` ([k, 3]: left, right, count); no
    value for empty `values`."""
    values = np.asarray(values, np.float64).reshape(-1)
    if not values.size:
      return
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
      edges = np.full(buckets + 1, lo)
      counts = np.zeros(buckets)
      counts[-1] = values.size
    else:
      counts, edges = np.histogram(values, buckets, (lo, hi))
    self._add(tag, _HISTOGRAM_METADATA,
              np.stack([edges[:-1], edges[1:], counts], axis=1))

  def image(self, tag, image):
    """A grey (H, W) float image in [0, 1], as PNG (fast compression)."""
    u8 = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    png = tf.io.encode_png(u8[:, :, None], compression=1).numpy()
    h, w = image.shape
    self._add(tag, _IMAGE_METADATA,
              np.array([str(w).encode(), str(h).encode(), png], dtype=object))

  def write(self, writer, step):
    if self.summary.value:
      with writer.as_default():
        tf.summary.experimental.write_raw_pb(self.summary.SerializeToString(),
                                             step=step)


# ------------------------------------------------------------------------------
# Lottery run-level summaries
# ------------------------------------------------------------------------------


class LevelSummaries:
  """Per-level lottery summaries in `<base_dir>/lottery/`.

  Call `before(model, net_dir)` when `model` holds the level's starting
  weights (right before training it) and `after(model, row, rows)` with the
  level's result. Levels finished by an earlier invocation are not written
  again (their masks still serve as the next level's "previous level").
  """

  def __init__(self, base_dir, enabled=None):
    self.dir = os.path.join(base_dir, 'lottery')
    if enabled is None:
      enabled = summaries_config()['enabled']
    self.enabled = enabled
    self.writer = None
    self._start = None
    self._prev_masks = None

  def before(self, model, net_dir):
    finished = (os.path.exists(os.path.join(net_dir, 'result.json'))
                and os.path.exists(os.path.join(net_dir, 'final')))
    if not self.enabled or finished:
      self._start = None
      return
    self._start = _weights(wrapper_lib.prunable_entries(model))

  def after(self, model, row, rows=None):
    entries = wrapper_lib.prunable_entries(model)
    masks = _masks(entries)
    if self._start is not None:
      self._write(row, rows or [row], masks, _weights(entries))
    self._prev_masks = masks
    self._start = None

  def _write(self, row, rows, masks, weights):
    if self.writer is None:
      self.writer = tf.summary.create_file_writer(self.dir)
    level = int(row['level'])
    figures = ('test_accuracy', 'early_stop_step', 'early_stop_test_accuracy')
    with self.writer.as_default(step=level):
      tf.summary.scalar('lottery/density', float(row['density']))
      for name in figures:
        value = _number(row.get(name))
        if value is not None:
          tf.summary.scalar(f'lottery/{name}', value)
      if self._prev_masks is not None:
        inter = union = 0
        for key, m in masks.items():
          prev = self._prev_masks.get(key)
          if prev is None:
            continue
          a, b = m > 0, prev > 0
          inter += np.count_nonzero(a & b)
          union += np.count_nonzero(a | b)
          tf.summary.scalar(f'lottery/jaccard/{key}', jaccard(a, b))
        tf.summary.scalar(f'lottery/jaccard/{TOTAL}',
                          inter / union if union else 1.0)
      sq = start_sq = 0.0
      for key, w in weights.items():
        start = self._start.get(key)
        if start is None:
          continue
        d = float(np.sum(np.square(w.astype(np.float64) - start)))
        sq += d
        start_sq += float(np.sum(np.square(start.astype(np.float64))))
        tf.summary.scalar(f'lottery/rewind_distance/{key}', math.sqrt(d))
      tf.summary.scalar(f'lottery/rewind_distance/{TOTAL}', math.sqrt(sq))
      if start_sq > 0:
        tf.summary.scalar(f'lottery/rewind_distance_relative/{TOTAL}',
                          math.sqrt(sq / start_sq))
      tf.summary.text('lottery/levels', levels_table(rows))
    with self.writer.as_default(step=density_step(row['density'])):
      for name in figures:
        value = _number(row.get(name))
        if value is not None:
          tf.summary.scalar(f'lottery_by_density/{name}', value)
    self.writer.flush()


def levels_table(rows):
  """A markdown table of lottery rows (for the text dashboard)."""
  def fmt(v, spec):
    v = _number(v) if not isinstance(v, str) else _number(_float_or_none(v))
    return format(v, spec) if v is not None else '-'

  lines = ['| level | % weights remaining | test accuracy | early-stop step '
           '| early-stop test accuracy |', '|---|---|---|---|---|']
  for r in rows:
    lines.append(
        f'| {r.get("level")} | {fmt(r.get("density"), ".2%")} '
        f'| {fmt(r.get("test_accuracy"), ".4f")} '
        f'| {fmt(r.get("early_stop_step"), ".0f")} '
        f'| {fmt(r.get("early_stop_test_accuracy"), ".4f")} |')
  return '\n'.join(lines)


def _float_or_none(s):
  try:
    return float(s)
  except (TypeError, ValueError):
    return None


# ------------------------------------------------------------------------------
# Custom-scalars layout
# ------------------------------------------------------------------------------


def _chart(title, *regexes):
  return layout_pb2.Chart(
      title=title,
      multiline=layout_pb2.MultilineChartContent(tag=list(regexes)))


def layout():
  """The custom-scalars layout: Sparsity, Lottery and Sparse training."""
  return layout_pb2.Layout(category=[
      layout_pb2.Category(title='Sparsity', chart=[
          _chart('Density per layer and total', r'^density/'),
          _chart('Sparsity per layer and total', r'^sparsity/'),
          _chart('Test accuracy', r'^eval/test_accuracy$'),
          _chart('Training loss', r'^train/loss$'),
      ]),
      layout_pb2.Category(title='Lottery', chart=[
          _chart('Test accuracy by level', r'^lottery/test_accuracy$'),
          _chart('Early-stop step by level', r'^lottery/early_stop_step$'),
          _chart('Early-stop test accuracy by level',
                 r'^lottery/early_stop_test_accuracy$'),
          _chart('Density by level', r'^lottery/density$'),
          _chart('Test accuracy vs density (step = 10000 x density)',
                 r'^lottery_by_density/test_accuracy$'),
          _chart('Early-stop step vs density (step = 10000 x density)',
                 r'^lottery_by_density/early_stop_step$'),
          _chart('Early-stop test accuracy vs density '
                 '(step = 10000 x density)',
                 r'^lottery_by_density/early_stop_test_accuracy$'),
          _chart('Mask overlap (Jaccard) with the previous level',
                 r'^lottery/jaccard/'),
          _chart('L2 distance of trained weights from the rewind point',
                 r'^lottery/rewind_distance/'),
      ]),
      layout_pb2.Category(title='Sparse training', chart=[
          _chart('Connections dropped per update',
                 r'^sparse_training/dropped/'),
          _chart('Connections grown per update', r'^sparse_training/grown/'),
          _chart('Churn since the start (lost start connections)',
                 r'^sparse_training/churn(/|$)'),
          _chart('Cumulative connections grown',
                 r'^sparse_training/cumulative_grown/'),
          _chart('Drop fraction', r'^sparse_training/drop_fraction(/|$)'),
          _chart('Grown connections surviving to the end',
                 r'^sparse_training/grown_survival/'),
      ]),
  ])


def write_layout(run_dir):
  """Writes the custom-scalars layout to `run_dir` unless already there."""
  if glob.glob(os.path.join(run_dir, 'events.out.tfevents.*')):
    return False
  writer = tf.summary.create_file_writer(run_dir)
  try:
    with writer.as_default():
      tf.summary.experimental.write_raw_pb(
          cs_summary.pb(layout()).SerializeToString(), step=0)
  finally:
    writer.close()
  return True


# ------------------------------------------------------------------------------
# Reading event files back (tests, tools)
# ------------------------------------------------------------------------------


def read_events(directory):
  """All summary values in `directory`'s event files (not recursive).

  Returns a list of (tag, step, plugin_name, value) where value is a numpy
  array (scalars: 0-d; images: the encoded [width, height, png, ...] strings;
  text: a string array).
  """
  out = []
  pattern = os.path.join(directory, 'events.out.tfevents.*')
  for path in sorted(glob.glob(pattern)):
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      for value in event.summary.value:
        plugin = value.metadata.plugin_data.plugin_name
        if value.HasField('tensor'):
          array = tf.make_ndarray(value.tensor)
        elif value.HasField('simple_value'):
          array = np.array(value.simple_value)
        else:
          array = None
        out.append((value.tag, int(event.step), plugin, array))
  return out


def read_scalars(directory):
  """Dict tag -> {step: float} of the scalar summaries in `directory`."""
  out = {}
  for tag, step, plugin, value in read_events(directory):
    if plugin == 'scalars' and value is not None:
      out.setdefault(tag, {})[step] = float(value)
  return out
