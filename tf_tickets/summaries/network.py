"""TensorBoard sparsity dashboards: what every run logs.

Every network that `experiment.Context.train` trains gets a `SummaryHook`
(unless `summaries.enabled = False`). It writes to the network's writer
(event files in the network directory, e.g. `RUN/level_3/`):

  density/<key>, density/total        fraction of prunable weights active
  disconnected_units/<key>, /total    fraction of output units (Dense) or
                                      filters (Conv) with no surviving weight
                                      (both only for networks whose masks
                                      change in training, from the start on)
  result                              text: the network's figures at the end
                                      (density per layer, accuracy, ...)
  weights/<key>                       histogram of the *active* weights
  unit_density/<key>                  histogram over output units / filters
                                      of the fraction of their weights that
                                      survive (buckets over [0, 1])
  input_connections/<key>             Dense layers fed by a Flatten of an
                                      (H, W, C) tensor (LeNet's fc1 on the
                                      image): surviving connections per input
                                      position as an H x W grey image (white
                                      = the best-connected position, black =
                                      none left): where the ticket looks

Density scalars are written once the masks change in training (sparse
training; with the start's values), then every `summaries.every` steps
(default 1000), at every mask change and at the end: a network with fixed
masks (a lottery level, static sparse training, a dense network) draws no
flat density lines, its density is in `result`, results.csv and, for a
lottery, the per-level `lottery/` summaries. Weight histograms at
the start, every `summaries.every` steps and at the end; the mask views
(unit_density, input_connections) at the start, at mask changes (at most
one set per `summaries.image_every` steps, default `summaries.every`; 0 for
every change) and at the end (see `views`). `summaries.enabled = False`
turns all of this off.

Sparse-training runs (hooks that call `ctx.masks_changed`) add, per mask
update and per layer, every numeric figure of the update's stats under
`sparse_training/<figure>/<key>` (dropped, grown, churn, drop_fraction,
units_alive and units_removed with channel sparsity, ...)
with `/total` sums for counts, `sparse_training/cumulative_grown/<key>`, and
at the end `sparse_training/grown_survival/<key>` and `/total`: the fraction
of the connections grown during training that are active at the end, as the
sparse-training hook counted them over the whole run (the result's
'layer_grown_survival' and 'grown_survival'; checkpointed, so a resume
counts what the interrupted run grew). The first update that reports figures also
writes the "Sparse training" section of the custom-scalars layout.

Every tag's steps increase within a network directory (TensorBoard's
default loader keeps, per tag, only points with steps below a newer one).
The values of one step are built on the host and written with one op
(`Batch`): an interval write costs a few milliseconds for LeNet-300-100
(see the "ours/static + summaries" arm of tools/bench_speed.py).
"""

import sys
import numpy as np

from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.image import metadata as image_metadata
from tf_tickets import settings
from tf_tickets import steps
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.errors import check_int
from tf_tickets.summaries import views
from tf_tickets.summaries.batch import Batch
from tf_tickets.summaries.batch import metadata
from tf_tickets.summaries.layout import reported_figures
from tf_tickets.summaries.layout import sparsity_section
from tf_tickets.summaries.layout import sparse_training_section
from tf_tickets.summaries.layout import summary as layout_summary
from tf_tickets.training import Hook

TOTAL = 'total'
_COUNT_FIGURES = ('dropped', 'grown', 'units_alive', 'units_removed')


_CONNECTIONS_METADATA = metadata(
    image_metadata, 'Surviving connections per input position, summed over '
    'channels and units: white = the best-connected position, black = no '
    'connection left.')
_UNIT_DENSITY_METADATA = metadata(
    histogram_metadata, 'Per output unit (filter): the fraction of its '
    'weights that survive.')


@settings.section('summaries')
class SummarySettings(settings.Settings):
  """Summary settings (gin: `summaries.*`).

  enabled: write the sparsity summaries (the loop's training loss and
    evaluation scalars are written regardless).
  every: interval of the sparsity scalars and weight histograms: steps,
    'Nit' or 'Nep'; 0 writes them only at the start, on mask changes and at
    the end.
  histograms: write histograms of the active prunable weights.
  mask_images: write the mask views, per-unit density histograms and
    per-input-position connection images (at the start, on mask changes,
    at the end).
  image_every: least number of steps between two sets of mask views written
    on mask changes (None: `every`; 0: at every mask change). Views at the
    start and the end are always written.
  image_size: largest image side; larger inputs are block-averaged.
  """
  enabled: bool = settings.resumable(True)
  every: object = settings.resumable(1000)
  histograms: bool = settings.resumable(True)
  mask_images: bool = settings.resumable(True)
  image_every: object = settings.resumable(None)
  image_size: int = settings.resumable(512)

  def validate(self):
    self.set('image_size', check_int('summaries.image_size', self.image_size,
                                     1))
    steps.parse(self.every, 'summaries.every')
    if self.image_every is not None:
      steps.parse(self.image_every, 'summaries.image_every')
    for name in ('enabled', 'histograms', 'mask_images'):
      self.set(name, bool(getattr(self, name)))


def default_hooks(cfg=None):
  """The summary hooks every network gets under `cfg` (a
  `SummarySettings`; none if disabled)."""
  cfg = cfg or SummarySettings()
  if not cfg.enabled:
    return []
  return [SummaryHook(every=cfg.every, histograms=cfg.histograms,
                      mask_images=cfg.mask_images, image_size=cfg.image_size,
                      image_every=cfg.image_every)]


# ------------------------------------------------------------------------------
# Pure helpers
# ------------------------------------------------------------------------------


def masks_of(entries):
  return {k: wr.masks[i].numpy() for k, (wr, i) in entries.items()}


def weights_of(entries):
  return {k: wr.prunable_weights[i].numpy() for k, (wr, i) in entries.items()}


def as_number(value):
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


def add_sparsity(batch, prefix, masks, per_unit):
  """`<prefix>density/<key>` and `<prefix>disconnected_units/<key>` (the
  fraction of units with no surviving weight, from `per_unit`: key -> unit
  densities), each with its `/total`, added to `batch`."""
  active = total = cut = units = 0
  for key, m in masks.items():
    a = int(np.count_nonzero(m))
    active, total = active + a, total + m.size
    batch.scalar(f'{prefix}density/{key}', a / m.size)
    n = int(np.count_nonzero(per_unit[key] == 0))
    cut, units = cut + n, units + per_unit[key].size
    batch.scalar(f'{prefix}disconnected_units/{key}', n / per_unit[key].size)
  batch.scalar(f'{prefix}density/{TOTAL}', active / total if total else 1.0)
  batch.scalar(f'{prefix}disconnected_units/{TOTAL}',
               cut / units if units else 0.0)


def result_table(result):
  """A network's result as a Markdown table (TensorBoard's Text tab)."""
  lines = ['| figure | value |', '|---|---|']
  for name in ('density', 'test_accuracy', 'early_stop_step',
               'early_stop_test_accuracy', 'steps', 'grown_survival',
               'inference_flops_fraction'):
    value = as_number(result.get(name))
    if value is not None:
      lines.append(f'| {name} | {value:.4g} |')
  for key, value in sorted((result.get('layer_density') or {}).items()):
    lines.append(f'| density of {key} | {float(value):.4f} |')
  return '\n'.join(lines)


class SummaryHook(Hook):
  """Writes sparsity scalars, histograms and mask views of one network.

  `experiments.Context.train` appends it after the algorithm hooks, so it sees masks set
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
    self._cumulative = {}
    self._axes, self._inputs = {}, {}  # per key: unit axes, (H, W, C) input
    self._section = False  # "Sparse training" layout written
    self._changed = False  # masks changed in training: sparsity scalars
    self._sections, self._sections_written = [], 0  # custom-scalars layout
    self._begin_step = 0

  # -- hook API ------------------------------------------------------------
  def begin(self, ctx):
    self._setup(ctx)
    self._begin_step = ctx.step
    if self.writer is not None:
      self._write_state(self._begin_step, histograms=True, images=True)

  def next_event(self, step):
    """Only the steps it writes at (`every`); mask changes reach it through
    `on_mask_update` at the mask hook's own events."""
    if self.writer is None or not self.every:
      return sys.maxsize
    return (step // self.every + 1) * self.every

  def after_step(self, ctx, step, grads):
    if self.writer is not None and self.every and step % self.every == 0:
      self._write_state(step, histograms=True)

  def on_mask_update(self, ctx, step, stats, totals=None):
    if self.entries is None:  # masks changed in a `begin` before ours
      self._setup(ctx)
    if self.writer is None:
      return
    last_image = self._last.get('images')
    images = (last_image is None or not self.image_every
              or step - last_image >= self.image_every)
    batch = Batch()
    if not self._changed:  # from now on density is a curve worth drawing
      self._changed = True
      start = Batch()
      self._add_scalars(start, self._begin_masks)
      if self._begin_step < step:
        start.write(self.writer, self._begin_step)
      else:
        batch = start
      self._sections.append(sparsity_section(list(self.entries)))
    self._add_state(batch, step, images=images)
    totals = {}
    figures_seen = reported_figures(stats)
    if figures_seen and not self._section:
      self._section = True
      self._sections.append(sparse_training_section(figures_seen))
    if len(self._sections) > self._sections_written:
      # One layout with every section: TensorBoard reads a run's latest.
      self._sections_written = len(self._sections)
      batch.merge(layout_summary(*self._sections))
    for key, figures in (stats or {}).items():
      figures = dict(figures or {})
      for name, value in figures.items():
        value = as_number(value)
        if value is None:
          continue
        batch.scalar(f'sparse_training/{name}/{key}', value)
        if name in _COUNT_FIGURES:
          totals[name] = totals.get(name, 0.0) + value
      grown = as_number(figures.get('grown'))
      if grown is not None:
        self._cumulative[key] = self._cumulative.get(key, 0.0) + grown
        batch.scalar(f'sparse_training/cumulative_grown/{key}',
                     self._cumulative[key])
    for name, value in totals.items():
      batch.scalar(f'sparse_training/{name}/{TOTAL}', value)
    batch.write(self.writer, step)

  def end(self, ctx, result):
    if self.writer is None:
      return
    step = int(result.get('steps', ctx.step))
    batch = Batch()
    self._add_state(batch, step, histograms=True, images=True)
    self._add_survival(batch, result)
    batch.text('result', result_table(result))
    batch.write(self.writer, step)
    self.writer.flush()

  # -- internals -------------------------------------------------------------
  def _setup(self, ctx):
    self.writer = ctx.writer
    self.entries = wrapper_lib.prunable_entries(ctx.model)
    if not self.entries:
      self.writer = None
      return
    spe = ctx.run.steps_per_epoch
    self.every = steps.resolve(self.every_setting, 'summaries.every', spe)
    self.image_every = steps.resolve(self.image_every_setting,
                                     'summaries.image_every', spe)
    self._axes = {k: views.unit_axes(wr.layer, wr.prunable_weights[i])
                  for k, (wr, i) in self.entries.items()}
    self._inputs = views.image_inputs(ctx.model, self.entries)
    masks = masks_of(self.entries)
    self._begin_masks = masks

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
    """Density scalars, histograms and mask views (each at most once a
    step)."""
    masks = masks_of(self.entries)
    if self._changed and self._once('scalars', step):
      self._add_scalars(batch, masks)
    if histograms and self.histograms and self._once('histograms', step):
      weights = weights_of(self.entries)
      for key, m in masks.items():
        batch.histogram(f'weights/{key}', weights[key][m > 0])
    if images and self.mask_images and self._once('images', step):
      for key, m in masks.items():
        batch.histogram(f'unit_density/{key}',
                        views.unit_density(m, self._axes[key]), buckets=20,
                        bounds=(0.0, 1.0), metadata=_UNIT_DENSITY_METADATA)
        if key in self._inputs:
          counts = views.input_connections(m, self._inputs[key])
          batch.image(f'input_connections/{key}',
                      views.connections_image(counts, self.image_size),
                      metadata=_CONNECTIONS_METADATA)
    return masks

  def _add_scalars(self, batch, masks):
    add_sparsity(batch, '', masks,
                 {k: views.unit_density(m, self._axes[k])
                  for k, m in masks.items()})

  def _add_survival(self, batch, result):
    """Grown connections surviving to the end, as the sparse-training hook
    counted them over the whole run (checkpointed: resumes included)."""
    for key, value in (result.get('layer_grown_survival') or {}).items():
      batch.scalar(f'sparse_training/grown_survival/{key}', value)
    total = as_number(result.get('grown_survival'))
    if total is not None:
      batch.scalar(f'sparse_training/grown_survival/{TOTAL}', total)
