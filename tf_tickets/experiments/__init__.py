"""Experiments: what one `python -m tf_tickets.train` run does.

`experiment.kind` selects a registered kind (`KINDS`):

* 'dense': the dense network in `RUN/level_0` (`experiments.dense`);
* 'lottery': IMP with rewinding and control branches
  (`experiments.lottery`, `experiments.branches`);
* 'sparse_training': RigL / SET / static / GMP (`experiments.sparse`);
* 'stability': instability analysis, the error barrier between two copies
  trained from theta_k (`experiments.stability`).

Every kind trains networks through `Context.train` (the one loop), one
directory per network, and keeps `RUN/results.csv` (one row per network).
"""
from absl import logging
import tensorflow as tf

from tf_tickets import data as data_lib
from tf_tickets import summaries
from tf_tickets import training
from tf_tickets.experiments import branches  # noqa: F401  (registers)
from tf_tickets.experiments import dense  # noqa: F401  (registers)
from tf_tickets.experiments import lottery  # noqa: F401  (registers)
from tf_tickets.experiments import sparse  # noqa: F401  (registers)
from tf_tickets.experiments import stability  # noqa: F401  (registers)
from tf_tickets.experiments.context import KINDS
from tf_tickets.experiments.context import Context
from tf_tickets.experiments.run_settings import ExperimentSettings  # noqa: F401
from tf_tickets.experiments.run_settings import RunSettings
from tf_tickets.keras import keras


def context(run_dir, run_settings=None, strategy=None, quiet=False):
  """The `Context` of a run of `run_settings` (a `RunSettings`; default
  settings if None) on `strategy` (the entrypoint's; default: the current
  one), after loading the data and building the model once (discarded),
  so that a bad configuration fails before anything is written."""
  run_settings = run_settings or RunSettings()
  config = run_settings.training
  data = data_lib.load(run_settings.dataset)
  training.resolve_schedule(config, data.steps_per_epoch)  # validate early
  ctx = Context(run_dir=run_dir, data=data, settings=run_settings,
                strategy=strategy or tf.distribute.get_strategy(),
                quiet=quiet or run_settings.experiment.quiet)
  ctx.check_model()
  keras.utils.set_random_seed(config.seed)
  return ctx


def run(run_dir, run_settings=None, strategy=None, quiet=False):
  """Runs the experiment of `run_settings` in `run_dir` (on `strategy`, see
  `context`); returns its rows."""
  return execute(context(run_dir, run_settings, strategy, quiet))


def execute(ctx):
  """Runs the experiment kind of `ctx.settings`; returns its rows."""
  kind = ctx.settings.experiment.kind
  summaries.write_layout(ctx.run_dir)  # custom-scalars layout, once per run
  logging.info('experiment %s on %s (%d train / %d val / %d test), '
               '%d replica(s)', kind, ctx.data.name, ctx.data.train_size,
               len(ctx.data.x_val), len(ctx.data.x_test),
               ctx.strategy.num_replicas_in_sync)
  return KINDS.get(kind)(ctx)


def table(rows, kind='lottery'):
  """The console summary of a results.csv: the levels table of the
  TensorBoard text dashboard, or the error barrier per k (stability)."""
  if kind == 'stability':
    return stability.table(rows)
  return summaries.levels_table(rows)
