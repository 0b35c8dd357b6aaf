"""Run-level lottery summaries: one point per level.

Lottery runs (`LevelSummaries`) keep a run-level writer in `RUN/lottery/`
(`RUN/branch_<name>/lottery/` for control branches) with, per level:

  lottery/{density,test_accuracy,early_stop_step,early_stop_test_accuracy}
      at step = level;
  lottery_by_sparsity/{test_accuracy,early_stop_step,early_stop_test_accuracy}
      at step = round(10000 * (1 - density)), the percent of weights pruned in
      hundredths of a percent (TensorBoard's x axis is an integer step: 0 is
      dense, 9640 is 96.4% pruned, 3.6% of the weights remaining);
  lottery/jaccard/<key>, /total: |m_L & m_L-1| / |m_L | m_L-1|, the mask
      overlap with the previous level (of the same branch);
  lottery/rewind_distance/<key>, /total: L2 distance of the level's trained
      prunable weights from its starting weights (the rewind point * mask);
      lottery/rewind_distance_relative/total divides by the start's norm;
  lottery/levels: a text table of all levels so far.

Every tag's steps increase from level to level: TensorBoard's default
loader (the data server of `--load_fast=auto`) keeps, per run and tag, only
the points whose step is below that of a newer point, so a step that went
down from level to level (as the density does) would leave one point. A
level whose density did not go down gets no by-sparsity point (warning).
The first level written also writes the "Lottery" section of the
custom-scalars layout into this directory.
"""

import math

from absl import logging
import numpy as np
import tensorflow as tf

from tf_tickets import rundir
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.summaries.layout import lottery_section
from tf_tickets.summaries.layout import write_section
from tf_tickets.summaries.network import TOTAL
from tf_tickets.summaries.network import SummarySettings
from tf_tickets.summaries.network import masks_of
from tf_tickets.summaries.network import as_number
from tf_tickets.summaries.network import weights_of

SPARSITY_STEP_SCALE = 10000  # step = round(scale * (1 - density))


def jaccard(a, b):
  """|a & b| / |a | b| of two 0/1 masks (1.0 if both are empty)."""
  a, b = np.asarray(a) > 0, np.asarray(b) > 0
  union = np.count_nonzero(a | b)
  return np.count_nonzero(a & b) / union if union else 1.0


def sparsity_step(density):
  """The TensorBoard step of a density: hundredths of a percent pruned."""
  return int(round(SPARSITY_STEP_SCALE * (1.0 - float(density))))


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

  def __init__(self, run_dir, branch=None, enabled=None):
    self.dir = rundir.lottery_summaries_dir(run_dir, branch)
    if enabled is None:
      enabled = SummarySettings().enabled
    self.enabled = enabled
    self.writer = None
    self._start = None
    self._prev_masks = None
    self._section = False  # the "Lottery" layout section written

  def before(self, model, net_dir):
    if not self.enabled or rundir.is_finished(net_dir):
      self._start = None
      return
    self._start = weights_of(wrapper_lib.prunable_entries(model))

  def after(self, model, row, rows=None):
    entries = wrapper_lib.prunable_entries(model)
    masks = masks_of(entries)
    if self._start is not None:
      self._write(row, rows or [row], masks, weights_of(entries))
    self._prev_masks = masks
    self._start = None

  def _write(self, row, rows, masks, weights):
    if self.writer is None:
      self.writer = tf.summary.create_file_writer(self.dir)
    level = int(row['level'])
    if not self._section:
      self._section = True
      write_section(self.writer, level,
                               lottery_section())
    figures = ('test_accuracy', 'early_stop_step', 'early_stop_test_accuracy')
    with self.writer.as_default(step=level):
      tf.summary.scalar('lottery/density', float(row['density']))
      for name in figures:
        value = as_number(row.get(name))
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
    step = sparsity_step(row['density'])
    before = [sparsity_step(r['density']) for r in rows
              if r is not row and int(r['level']) < level]
    if before and step <= max(before):
      logging.warning('lottery level %d: %.2f%% of weights pruned, not more '
                      'than at an earlier level; no lottery_by_sparsity point',
                      level, step / SPARSITY_STEP_SCALE * 100)
    else:
      with self.writer.as_default(step=step):
        for name in figures:
          value = as_number(row.get(name))
          if value is not None:
            tf.summary.scalar(f'lottery_by_sparsity/{name}', value)
    self.writer.flush()


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
