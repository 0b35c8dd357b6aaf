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
from tf_tickets import settings
from tf_tickets import summaries
from tf_tickets import training
from tf_tickets.errors import check_bool
from tf_tickets.experiments import branches  # noqa: F401  (registers)
from tf_tickets.experiments import dense  # noqa: F401  (registers)
from tf_tickets.experiments import lottery  # noqa: F401  (registers)
from tf_tickets.experiments import sparse  # noqa: F401  (registers)
from tf_tickets.experiments import stability  # noqa: F401  (registers)
from tf_tickets.experiments.context import KINDS
from tf_tickets.experiments.context import Context
from tf_tickets.keras import keras


@settings.gin_settings('experiment')
class ExperimentSettings(settings.Settings):
  """gin `experiment.*`: `kind` (a name in KINDS) and `quiet` (no progress
  bar)."""
  kind: str = 'lottery'
  quiet: bool = False

  def validate(self):
    KINDS.get(self.kind)
    self.set('quiet', check_bool('experiment.quiet', self.quiet))


def context(run_dir, quiet=False):
  """Validates the settings, loads the data; the `Context` of a run."""
  config = training.TrainingConfig()
  strategy = training.make_strategy(config.strategy)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  keras.utils.set_random_seed(config.seed)
  data = data_lib.load_dataset()
  training.resolve_schedule(config, data.steps_per_epoch)  # validate early
  return Context(run_dir=run_dir, data=data, config=config, strategy=strategy,
                 quiet=quiet)


def run(run_dir, quiet=False):
  """Runs the configured experiment in `run_dir`; returns its rows."""
  cfg = ExperimentSettings()
  return execute(context(run_dir, quiet=quiet or cfg.quiet))


def execute(ctx):
  """Runs the configured experiment kind in `ctx`; returns its rows."""
  cfg = ExperimentSettings()
  summaries.write_layout(ctx.run_dir)  # custom-scalars layout, once per run
  logging.info('experiment %s on %s (%d train / %d val / %d test), '
               '%d replica(s)', cfg.kind, ctx.data.name, len(ctx.data.x_train),
               len(ctx.data.x_val), len(ctx.data.x_test),
               ctx.strategy.num_replicas_in_sync)
  return KINDS.get(cfg.kind)(ctx)
