"""Experiments: what one `python -m tf_tickets.train` run does.

`experiment.kind` selects it:

* 'dense': trains the dense network (all masks one) in `RUN/level_0`;
* 'lottery': iterative magnitude pruning with rewinding (`tf_tickets.lottery`);
* 'sparse_training': RigL / SET / static / GMP (`tf_tickets.sparse_training`).

Every experiment trains networks through `training.train_network`, one
directory per network, and keeps `RUN/results.csv` (one row per network).
"""

import csv
import dataclasses
import io
import os

from absl import logging
import gin
import tensorflow as tf

from tf_tickets import data as data_lib
from tf_tickets import export as export_lib
from tf_tickets import models
from tf_tickets import summaries
from tf_tickets import training
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.errors import check_choice
from tf_tickets.keras import keras

KINDS = ('dense', 'lottery', 'sparse_training')

# Columns first in results.csv; per-layer densities follow as density/<key>.
RESULT_COLUMNS = (
    'level', 'branch', 'method', 'seed', 'density', 'sparsity',
    'test_accuracy', 'test_loss', 'val_accuracy', 'val_loss',
    'early_stop_step', 'early_stop_test_accuracy', 'early_stop_val_loss',
    'steps', 'active_weights', 'prunable_weights', 'wall_time')


@dataclasses.dataclass
class Context:
  """What an experiment needs: the run directory, data, config, strategy."""
  run_dir: str
  data: data_lib.Data
  config: training.TrainingConfig
  strategy: tf.distribute.Strategy
  quiet: bool = False

  def build_model(self, dense_layers=()):
    """The configured model (gin `model.*`), wrapped, in strategy scope."""
    with self.strategy.scope():
      model = models.build_model(
          input_shape=self.data.input_shape,
          num_classes=self.data.num_classes, mean=self.data.mean,
          std=self.data.std, seed=self.config.seed)
      wrapped = wrapper_lib.wrap(model, dense_layers=dense_layers)
    if not os.path.exists(os.path.join(self.run_dir, 'operative_config.gin')):
      write_operative_config(self.run_dir)  # complete once the run ends
    return wrapped

  def writer(self, net_dir):
    return tf.summary.create_file_writer(net_dir)

  def train(self, model, net_dir, hooks=(), extra=None, learning_rate=None,
            config=None):
    """Trains one network in `net_dir` (resumes, never redoes finished work)."""
    return training.train_network(
        model, self.data, config or self.config, self.strategy, net_dir,
        hooks=list(hooks) + summaries.default_hooks(),
        writer=lambda: self.writer(net_dir), quiet=self.quiet, extra=extra,
        learning_rate=learning_rate)


def write_operative_config(run_dir):
  """Writes the settings used so far (gin's operative config), atomically."""
  training.atomic_write_text(os.path.join(run_dir, 'operative_config.gin'),
                             gin.operative_config_str())


def write_results(path, rows):
  """Writes result dicts as CSV (atomically), fixed columns first."""
  layer_keys = []
  for row in rows:
    for k in row.get('layer_density', {}):
      if k not in layer_keys:
        layer_keys.append(k)
  extra = sorted({k for r in rows for k in r
                  if k not in RESULT_COLUMNS and k != 'layer_density'
                  and not isinstance(r[k], (dict, list))})
  columns = list(RESULT_COLUMNS) + extra + [f'density/{k}' for k in layer_keys]
  buf = io.StringIO()
  out = csv.DictWriter(buf, columns, extrasaction='ignore')
  out.writeheader()
  for row in rows:
    flat = dict(row)
    for k, v in row.get('layer_density', {}).items():
      flat[f'density/{k}'] = v
    out.writerow({k: ('' if flat.get(k) is None else flat.get(k))
                  for k in columns})
  training.atomic_write_text(path, buf.getvalue())


def read_results(path):
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def run_dense(ctx):
  model = ctx.build_model()
  result = ctx.train(model, os.path.join(ctx.run_dir, 'level_0'),
                     extra=dict(level=0, branch='dense', method='dense',
                                seed=ctx.config.seed))
  write_results(os.path.join(ctx.run_dir, 'results.csv'), [result])
  return [result]


@gin.configurable('experiment')
def run(run_dir, kind='lottery', quiet=False):
  """Runs the experiment `kind` in `run_dir` with the gin-bound settings."""
  check_choice('experiment.kind', kind, KINDS)
  config = training.training_config()
  strategy = training.make_strategy(config.strategy)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  keras.utils.set_random_seed(config.seed)
  data = data_lib.load_dataset()
  training.resolve_schedule(config, data.steps_per_epoch)  # validate early
  ctx = Context(run_dir=run_dir, data=data, config=config, strategy=strategy,
                quiet=quiet)
  summaries.write_layout(run_dir)  # custom-scalars layout, once per run
  logging.info('experiment %s on %s (%d train / %d val / %d test), '
               '%d replica(s)', kind, data.name,
               len(data.x_train), len(data.x_val), len(data.x_test),
               strategy.num_replicas_in_sync)
  if kind == 'dense':
    rows = run_dense(ctx)
  elif kind == 'lottery':
    from tf_tickets import lottery  # pylint: disable=g-import-not-at-top
    rows = lottery.run(ctx)
  else:
    from tf_tickets import sparse_training  # pylint: disable=g-import-not-at-top
    rows = sparse_training.run(ctx)
  export_lib.after_run(ctx)  # gin `export.formats`; default: no export
  return rows
