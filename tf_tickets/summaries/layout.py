"""The custom-scalars layout of a run directory.

`write_layout(run_dir)` writes, once per run directory, a custom-scalars
layout with "Sparsity", "Lottery" and "Sparse training" sections, so
`tensorboard --logdir runs/` shows these charts grouped (CUSTOM SCALARS tab).
"""

import glob
import os

import tensorflow as tf

from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import summary as cs_summary

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
