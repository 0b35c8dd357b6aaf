"""Run-level lottery summaries: one point per level.

Lottery runs (`LevelSummaries`) keep a run-level writer in `RUN/lottery/`
(`RUN/branch_<name>/lottery/` for control branches) with, per level at
step = level:

  lottery/figure: the lottery panels of `figures` (test accuracy, early-stop
      step, test accuracy at early stop against the percent of weights
      remaining, log scale; a branch's figure has the lottery's line too),
      as an image: TensorBoard's smoothing and outlier clipping do not bend
      it, and its x axis is the fraction of weights, not the step;
  lottery/levels: a text table of all levels so far;
  lottery/input_connections/<key>: for a Dense layer on a flattened image,
      the surviving connections per input position at every level so far,
      side by side (each level stretched to its own range: where the
      ticket looks, at any density);
  lottery/unit_density/<key>: one band per level, one column per unit
      (filter): the fraction of the unit's weights that survive, relative
      to the level's best-connected unit (dark columns: units dying);
  lottery/{test_accuracy,early_stop_step,early_stop_test_accuracy};
  lottery/density/<key>, /total; lottery/disconnected_units/<key>, /total;
  lottery/jaccard/<key>, /total: |m_L & m_L-1| / |m_L | m_L-1|, the mask
      overlap with the previous level (of the same branch);
  lottery/rewind_distance/<key>, /total: L2 distance of the level's trained
      prunable weights from its starting weights (the rewind point * mask);
      lottery/rewind_distance_relative/total divides by the start's norm.

Every tag's steps increase from level to level (TensorBoard's default
loader keeps, per run and tag, only the points whose step is below that of
a newer point). The first level written also writes the "Lottery" section
of the custom-scalars layout into this directory (per-layer charts of at
most `layout.MAX_LINES` lines).
"""

import math
import os

import numpy as np
import tensorflow as tf

from tensorboard.plugins.image import metadata as image_metadata
from tf_tickets import rundir
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.summaries import figures
from tf_tickets.summaries import views
from tf_tickets.summaries.batch import Batch
from tf_tickets.summaries.batch import metadata
from tf_tickets.summaries.eventfiles import compact
from tf_tickets.summaries.layout import lottery_section
from tf_tickets.summaries.layout import summary as layout_summary
from tf_tickets.summaries.network import TOTAL
from tf_tickets.summaries.network import add_sparsity
from tf_tickets.summaries.network import masks_of
from tf_tickets.summaries.network import as_number
from tf_tickets.summaries.network import weights_of

_FIGURE_METADATA = metadata(
    image_metadata, 'Test accuracy, early-stop step and test accuracy at '
    'early stop against the percent of weights remaining, every level so far '
    '(tools/plot_tickets.py draws the same from results.csv files).')
_CONNECTIONS_METADATA = metadata(
    image_metadata, 'Surviving connections per input position, one map per '
    'level (row-major, level 0 first), each stretched to its own range: '
    'white = that level\'s best-connected position, black = its least.')
_UNITS_METADATA = metadata(
    image_metadata, 'One band per level (level 0 on top), one column per '
    'unit or filter: the fraction of its weights that survive, relative to '
    'the level\'s best-connected unit; black = no weight left.')


def jaccard(a, b):
  """|a & b| / |a | b| of two 0/1 masks (1.0 if both are empty)."""
  a, b = np.asarray(a) > 0, np.asarray(b) > 0
  union = np.count_nonzero(a | b)
  return np.count_nonzero(a & b) / union if union else 1.0


# ------------------------------------------------------------------------------
# Lottery run-level summaries
# ------------------------------------------------------------------------------


class LevelSummaries:
  """Per-level lottery summaries in `<base_dir>/lottery/`.

  Call `before(model, net_dir)` when `model` holds the level's starting
  weights (right before training it) and `after(model, row, rows)` with the
  level's result. Levels finished by an earlier invocation are not written
  again (their masks still serve as the next level's "previous level" and
  their views as the first columns of the per-level images).
  """

  def __init__(self, run_dir, branch=None, enabled=True):
    self.run_dir, self.branch = run_dir, branch
    self.dir = rundir.lottery_summaries_dir(run_dir, branch)
    self.enabled = enabled
    self.writer = None
    self._start = None
    self._prev_masks = None
    self._section = False  # the "Lottery" layout section written
    self._axes = self._inputs = None
    self._connections = {}  # key -> [(H, W) counts per level so far]
    self._units = {}  # key -> [unit densities per level so far]

  def before(self, model, net_dir):
    if not self.enabled or rundir.is_finished(net_dir):
      self._start = None
      return
    self._start = weights_of(wrapper_lib.prunable_entries(model))

  def after(self, model, row, rows=None):
    entries = wrapper_lib.prunable_entries(model)
    masks = masks_of(entries)
    if self.enabled:
      self._add_views(model, entries, masks)
    if self._start is not None:
      self._write(row, rows or [row], masks, weights_of(entries))
    self._prev_masks = masks
    self._start = None

  def _add_views(self, model, entries, masks):
    if self._axes is None:
      self._axes = {k: views.unit_axes(wr.layer, wr.prunable_weights[i])
                    for k, (wr, i) in entries.items()}
      self._inputs = views.image_inputs(model, entries)
    for key, m in masks.items():
      self._units.setdefault(key, []).append(
          views.unit_density(m, self._axes[key]))
      if key in self._inputs:
        self._connections.setdefault(key, []).append(
            views.input_connections(m, self._inputs[key]))

  def _write(self, row, rows, masks, weights):
    if self.writer is None:
      self.writer = tf.summary.create_file_writer(self.dir)
    level = int(row['level'])
    batch = Batch()
    if not self._section:
      self._section = True
      batch.merge(layout_summary(lottery_section(list(masks))))
    for name in ('test_accuracy', 'early_stop_step',
                 'early_stop_test_accuracy'):
      value = as_number(row.get(name))
      if value is not None:
        batch.scalar(f'lottery/{name}', value)
    self._add_masks(batch, masks)
    self._add_distances(batch, weights)
    batch.text('lottery/levels', levels_table(rows))
    self._add_images(batch, rows)
    batch.write(self.writer, level)
    # Closed after every level, so that a rerun's writer (a new file) is
    # merged into the one file of the directory.
    self.writer.close()
    self.writer = None
    compact(self.dir)

  def _add_masks(self, batch, masks):
    """Density and cut-off units per layer, overlap with the last level."""
    add_sparsity(batch, 'lottery/', masks,
                 {k: units[-1] for k, units in self._units.items()})
    if self._prev_masks is None:
      return
    inter = union = 0
    for key, m in masks.items():
      prev = self._prev_masks.get(key)
      if prev is not None:
        now, before = m > 0, prev > 0
        inter += np.count_nonzero(now & before)
        union += np.count_nonzero(now | before)
        batch.scalar(f'lottery/jaccard/{key}', jaccard(now, before))
    batch.scalar(f'lottery/jaccard/{TOTAL}', inter / union if union else 1)

  def _add_distances(self, batch, weights):
    sq = start_sq = 0.0
    for key, w in weights.items():
      start = self._start.get(key)
      if start is None:
        continue
      d = float(np.sum(np.square(w.astype(np.float64) - start)))
      sq += d
      start_sq += float(np.sum(np.square(start.astype(np.float64))))
      batch.scalar(f'lottery/rewind_distance/{key}', math.sqrt(d))
    batch.scalar(f'lottery/rewind_distance/{TOTAL}', math.sqrt(sq))
    if start_sq > 0:
      batch.scalar(f'lottery/rewind_distance_relative/{TOTAL}',
                   math.sqrt(sq / start_sq))

  def _add_images(self, batch, rows):
    """The ticket figure and the mask views of every level so far."""
    rows = list(rows)
    if self.branch:  # the lottery's line beside the branch's
      lottery = rundir.results_path(self.run_dir)
      if os.path.exists(lottery):
        rows = rundir.read_results(lottery) + rows
    try:
      batch.png('lottery/figure', figures.png(rows), _FIGURE_METADATA)
    except ValueError:  # no panel has data (no density in the rows)
      pass
    for key, maps in self._connections.items():
      batch.image(f'lottery/input_connections/{key}',
                  views.level_grid(maps), _CONNECTIONS_METADATA)
    for key, densities in self._units.items():
      batch.image(f'lottery/unit_density/{key}', views.unit_rows(densities),
                  _UNITS_METADATA)


def levels_table(rows):
  """A markdown table of lottery rows (for the text dashboard)."""
  def fmt(v, spec):
    v = as_number(v) if not isinstance(v, str) else as_number(_float_or_none(v))
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
