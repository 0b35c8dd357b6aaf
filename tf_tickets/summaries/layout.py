"""The custom-scalars layout: a run shows the sections it has.

TensorBoard's CUSTOM SCALARS tab merges the layouts of every run (event
directory) below `--logdir` by section title. So each observer writes the
section of what it logs, where it logs it:

* "Training": `write_layout(run_dir)`, once per run directory, at its root
  (every experiment kind trains networks): loss and accuracy curves;
* "Lottery": `LevelSummaries`, into the run-level `lottery/` directory, the
  first time it writes a level (step = level);
* "Sparsity" and "Sparse training": `SummaryHook`, into the network's
  directory, at the first mask update (a network whose masks never change
  in training has no sparsity curves: its density is in results.csv, the
  lottery's per-level charts and the network's text summary), with the
  charts of the figures reported (no grown-connection charts for
  pruning-only methods).

Per-layer charts hold at most MAX_LINES tags each (`grouped_charts`), so a
20-layer ResNet gets three density charts rather than one of 21 lines. A
dense or lottery run shows no "Sparse training" section and a
sparse-training run no "Lottery" section (with `--logdir runs/` over runs
of several kinds, TensorBoard shows the union). Curves across levels are
also drawn as an image (`lottery/figure`), which TensorBoard's smoothing
and outlier clipping leave alone.
"""

import glob
import os
import re

import tensorflow as tf

from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import summary as cs_summary

TRAINING, SPARSITY, LOTTERY, SPARSE_TRAINING = (
    'Training', 'Sparsity', 'Lottery', 'Sparse training')
MAX_LINES = 10  # per chart and run: more lines than this are not readable


def _chart(title, *regexes):
  return layout_pb2.Chart(
      title=title,
      multiline=layout_pb2.MultilineChartContent(tag=list(regexes)))


def _alternatives(names):
  return '|'.join(re.escape(n) for n in names)


def grouped_charts(title, prefix, keys, total='total'):
  """Charts of `prefix/<key>` with at most MAX_LINES tags each: `total`
  (if given) and the layers in groups of MAX_LINES - 1, in layer order."""
  keys = list(keys)
  size = MAX_LINES - 1
  groups = [keys[i:i + size] for i in range(0, len(keys), size)] or [[]]
  charts = []
  for n, group in enumerate(groups):
    names = ([total] if total is not None else []) + group
    part = f' ({n + 1} of {len(groups)})' if len(groups) > 1 else ''
    charts.append(_chart(title + part, rf'^{re.escape(prefix)}/'
                         rf'({_alternatives(names)})$'))
  return charts


def training_section():
  """What every network logs (one line per network)."""
  return layout_pb2.Category(title=TRAINING, chart=[
      _chart('Training loss', r'^train/loss$'),
      _chart('Validation accuracy', r'^eval/val_accuracy$'),
      _chart('Test accuracy (end of training)', r'^eval/test_accuracy$'),
  ])


def sparsity_section(keys):
  """Density and cut-off units of a network whose masks change in
  training (per layer, at most MAX_LINES lines a chart)."""
  return layout_pb2.Category(
      title=SPARSITY,
      chart=grouped_charts('Density, total and per layer', 'density', keys)
      + grouped_charts('Units (filters) with no surviving weight, fraction',
                       'disconnected_units', keys))


def lottery_section(keys):
  """Per-level charts (step = level): accuracy, early stopping, density
  and mask overlap per layer, distance from the rewind point."""
  return layout_pb2.Category(title=LOTTERY, chart=[
      _chart('Test accuracy by level (end of training; at early stop)',
             r'^lottery/test_accuracy$', r'^lottery/early_stop_test_accuracy$'),
      _chart('Early-stop step by level', r'^lottery/early_stop_step$'),
  ] + grouped_charts('Density by level, total and per layer',
                     'lottery/density', keys)
    + grouped_charts('Mask overlap (Jaccard) with the previous level',
                     'lottery/jaccard', keys)
    + grouped_charts('L2 distance of trained weights from the rewind point',
                     'lottery/rewind_distance', keys)
    + grouped_charts('Units (filters) with no surviving weight, fraction',
                     'lottery/disconnected_units', keys))


_SPARSE_CHARTS = (  # (figure that must be reported, title, regex)
    ('dropped', 'Connections dropped per update',
     r'^sparse_training/dropped/'),
    ('grown', 'Connections grown per update', r'^sparse_training/grown/'),
    ('churn', 'Churn since the start (lost start connections)',
     r'^sparse_training/churn(/|$)'),
    ('grown', 'Cumulative connections grown',
     r'^sparse_training/cumulative_grown/'),
    ('drop_fraction', 'Drop fraction', r'^sparse_training/drop_fraction(/|$)'),
    ('units_alive', 'Units alive (sparse_training.channel_sparsity)',
     r'^sparse_training/units_alive/'),
    ('grown', 'Grown connections surviving to the end',
     r'^sparse_training/grown_survival/'),
)


def sparse_training_section(figures=None):
  """The sparse-training charts of the `figures` an update reports (all if
  None); a figure counts when some layer reports it, 'grown' when some
  layer grew connections. None if no chart is left."""
  charts = [_chart(title, regex) for figure, title, regex in _SPARSE_CHARTS
            if figures is None or figure in figures]
  if not charts:
    return None
  return layout_pb2.Category(title=SPARSE_TRAINING, chart=charts)


def reported_figures(stats):
  """The figures of an update's stats ({key: {figure: value}}) that a
  section has data for: numeric ones, 'grown' only when positive."""
  out = set()
  for figures in (stats or {}).values():
    for name, value in dict(figures or {}).items():
      try:
        value = float(value)
      except (TypeError, ValueError):
        continue
      if name != 'grown' or value > 0:
        out.add(name)
  return out


def layout(*sections):
  """A custom-scalars layout of the given sections (categories)."""
  return layout_pb2.Layout(category=[s for s in sections if s is not None])


def summary(*sections):
  """The layout of `sections` as a tf.compat.v1.Summary (for `Batch`)."""
  return tf.compat.v1.Summary.FromString(
      cs_summary.pb(layout(*sections)).SerializeToString())


def write_section(writer, step, *sections):
  """Writes a layout of `sections` with `writer` at `step`."""
  with writer.as_default():
    tf.summary.experimental.write_raw_pb(
        summary(*sections).SerializeToString(), step=step)


def write_layout(run_dir):
  """Writes the "Training" section to `run_dir` unless events are there."""
  if glob.glob(os.path.join(run_dir, 'events.out.tfevents.*')):
    return False
  writer = tf.summary.create_file_writer(run_dir)
  try:
    write_section(writer, 0, training_section())
  finally:
    writer.close()
  return True
