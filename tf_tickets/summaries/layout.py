"""The custom-scalars layout: a run shows the sections it has.

TensorBoard's CUSTOM SCALARS tab merges the layouts of every run (event
directory) below `--logdir` by section title. So each observer writes the
section of what it logs, where it logs it:

* "Sparsity": `write_layout(run_dir)`, once per run directory, at its root
  (every experiment kind trains networks);
* "Lottery": `LevelSummaries`, into the run-level `lottery/` directory, the
  first time it writes a level;
* "Sparse training": `SummaryHook`, into the network's directory, at the
  first mask update that reports figures, with the charts of the figures
  reported (no grown-connection charts for pruning-only methods).

A dense or lottery run therefore shows no "Sparse training" section and a
sparse-training run no "Lottery" section (with `--logdir runs/` over runs
of several kinds, TensorBoard shows the union).
"""

import glob
import os

import tensorflow as tf

from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import summary as cs_summary

SPARSITY, LOTTERY, SPARSE_TRAINING = 'Sparsity', 'Lottery', 'Sparse training'
_BY_SPARSITY = '(step = 100 x % of weights pruned)'


def _chart(title, *regexes):
  return layout_pb2.Chart(
      title=title,
      multiline=layout_pb2.MultilineChartContent(tag=list(regexes)))


def sparsity_section():
  return layout_pb2.Category(title=SPARSITY, chart=[
      _chart('Density per layer and total', r'^density/'),
      _chart('Sparsity per layer and total', r'^sparsity/'),
      _chart('Units (filters) with no surviving weight, fraction',
             r'^disconnected_units/'),
      _chart('Test accuracy', r'^eval/test_accuracy$'),
      _chart('Training loss', r'^train/loss$'),
  ])


def lottery_section():
  """Per-level charts: step = level, or 100 x % of weights pruned."""
  return layout_pb2.Category(title=LOTTERY, chart=[
      _chart('Test accuracy by level', r'^lottery/test_accuracy$'),
      _chart('Early-stop step by level', r'^lottery/early_stop_step$'),
      _chart('Early-stop test accuracy by level',
             r'^lottery/early_stop_test_accuracy$'),
      _chart('Density by level', r'^lottery/density$'),
      _chart(f'Test accuracy vs sparsity {_BY_SPARSITY}',
             r'^lottery_by_sparsity/test_accuracy$'),
      _chart(f'Early-stop step vs sparsity {_BY_SPARSITY}',
             r'^lottery_by_sparsity/early_stop_step$'),
      _chart(f'Early-stop test accuracy vs sparsity {_BY_SPARSITY}',
             r'^lottery_by_sparsity/early_stop_test_accuracy$'),
      _chart('Mask overlap (Jaccard) with the previous level',
             r'^lottery/jaccard/'),
      _chart('L2 distance of trained weights from the rewind point',
             r'^lottery/rewind_distance/'),
  ])


_SPARSE_CHARTS = (  # (figure that must be reported, title, regex)
    ('dropped', 'Connections dropped per update',
     r'^sparse_training/dropped/'),
    ('grown', 'Connections grown per update', r'^sparse_training/grown/'),
    ('churn', 'Churn since the start (lost start connections)',
     r'^sparse_training/churn(/|$)'),
    ('grown', 'Cumulative connections grown',
     r'^sparse_training/cumulative_grown/'),
    ('drop_fraction', 'Drop fraction', r'^sparse_training/drop_fraction(/|$)'),
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
  """Writes the "Sparsity" section to `run_dir` unless events are there."""
  if glob.glob(os.path.join(run_dir, 'events.out.tfevents.*')):
    return False
  writer = tf.summary.create_file_writer(run_dir)
  try:
    write_section(writer, 0, sparsity_section())
  finally:
    writer.close()
  return True
