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
  quiet: bool = settings.resumable(False)

  def validate(self):
    KINDS.get(self.kind)
    self.set('quiet', check_bool('experiment.quiet', self.quiet))


def context(run_dir, quiet=False):
  """The `Context` of a run, after validating the whole configuration:
  every bound settings namespace, the experiment kind, the data (loaded)
  and the model (built once and discarded). Nothing is written, so a bad
  configuration fails before the run directory exists."""
  settings.validate_bound()
  ExperimentSettings()
  config = training.TrainingConfig()
  strategy = training.make_strategy(config.strategy,
                                   config.worker_timeout)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  data = data_lib.load_dataset()
  training.resolve_schedule(config, data.steps_per_epoch)  # validate early
  ctx = Context(run_dir=run_dir, data=data, config=config, strategy=strategy,
                quiet=quiet)
  ctx.check_model()
  keras.utils.set_random_seed(config.seed)
  return ctx


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


def table(rows):
  """The console summary of a results.csv: the levels table of the
  TensorBoard text dashboard, or the error barrier per k (stability)."""
  if ExperimentSettings().kind == 'stability':
    return stability.table(rows)
  return summaries.levels_table(rows)
