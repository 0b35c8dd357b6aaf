"""`TrainingScalars`: the loop's own figures as TensorBoard scalars.

The loop computes them and tells its hooks (`after_log`, `after_eval`,
`on_mask_update`, `end`); this hook writes them to the network's writer,
whether or not `summaries.enabled` (they are the run's learning curves):

  train/loss, train/learning_rate          every `training.log_every` steps
  eval/val_loss, eval/val_accuracy         every evaluation
  eval/test_loss, eval/test_accuracy,
  eval/early_stop_test_accuracy, flops/*   at the end
  sparse_training/churn, /drop_fraction    at every mask update (totals)

`write_stability` writes an instability analysis's barriers (step = the
rewind step k) and error along the path (step = point index). So the
summaries package is the only writer of events (an architecture test
checks it).
"""
import sys

import tensorflow as tf

from tf_tickets.summaries.batch import Batch
from tf_tickets.summaries.network import as_number
from tf_tickets.training import Hook

_END = (('test_loss', 'eval/test_loss'), ('test_accuracy', 'eval/test_accuracy'),
        ('early_stop_test_accuracy', 'eval/early_stop_test_accuracy'),
        ('inference_flops_fraction', 'flops/inference_flops_fraction'),
        ('training_flops_fraction', 'flops/training_flops_fraction'))


def _write(ctx, step, values):
  writer = ctx.writer
  if writer is None:
    return
  batch = Batch()
  for tag, value in values:
    value = as_number(value)
    if value is not None:
      batch.scalar(tag, value)
  batch.write(writer, step)


class TrainingScalars(Hook):
  """Writes the loop's figures (see the module docstring)."""

  def next_event(self, step):
    return sys.maxsize  # it only listens: no step of its own

  def after_log(self, ctx, step, values):
    _write(ctx, step, [('train/loss', values['loss']),
                           ('train/learning_rate', values['learning_rate'])])

  def after_eval(self, ctx, step, metrics):
    _write(ctx, step, [('eval/val_loss', metrics['val_loss']),
                           ('eval/val_accuracy', metrics['val_accuracy'])])

  def on_mask_update(self, ctx, step, stats, totals=None):
    _write(ctx, step, [(f'sparse_training/{name}', value)
                           for name, value in (totals or {}).items()])

  def end(self, ctx, result):
    _write(ctx, int(result['steps']),
           [(tag, result.get(name)) for name, tag in _END])


def file_writer(directory):
  """The TensorBoard writer of one network (its directory), for the hooks
  of this package."""
  return tf.summary.create_file_writer(directory)


def write_stability(run_dir, rows):
  """stability/{error,loss}_barrier at step k, and
  stability/error_along_path/k_<k> at step = point, into `run_dir`."""
  writer = tf.summary.create_file_writer(run_dir)
  try:
    for row in rows:
      batch = Batch()
      batch.scalar('stability/error_barrier', row['error_barrier'])
      batch.scalar('stability/loss_barrier', row['loss_barrier'])
      batch.write(writer, int(row['k']))
      for i, e in enumerate(row['errors']):
        point = Batch()
        point.scalar(f'stability/error_along_path/k_{row["k"]}', e)
        point.write(writer, i)
  finally:
    writer.close()
