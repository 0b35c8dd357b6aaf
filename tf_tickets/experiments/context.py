"""What every experiment gets: the `Context`, and the registry of kinds.

An experiment kind is a function `run(ctx) -> rows` registered with
`@KINDS.register('name')`; it builds wrapped models with
`ctx.build_model()`, trains each network with `ctx.train(...)` (one
directory per network, see `tf_tickets.rundir`) and writes its
results.csv rows.
"""
import dataclasses

import tensorflow as tf

from tf_tickets import data as data_lib
from tf_tickets import models
from tf_tickets import rundir
from tf_tickets import settings
from tf_tickets import summaries
from tf_tickets import training
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.errors import ConfigError
from tf_tickets.keras import keras

KINDS = settings.Registry('experiment.kind')


@dataclasses.dataclass
class Context:
  """What an experiment needs: the run directory, data, settings (a
  `RunSettings`), strategy."""
  run_dir: str
  data: data_lib.Data
  settings: object
  strategy: tf.distribute.Strategy
  quiet: bool = False
  # What this invocation did: the results.csv files written (path -> rows,
  # in writing order) and how many networks it trained (not just loaded).
  results: dict = dataclasses.field(default_factory=dict)
  trained: int = 0

  @property
  def config(self):
    """The training settings (`settings.training`)."""
    return self.settings.training

  def build_model(self, dense_layers=()):
    """The model of `settings.model`, wrapped, in strategy scope."""
    with self.strategy.scope():
      model = models.build_for(self.data, seed=self.config.seed,
                               cfg=self.settings.model)
      return wrapper_lib.wrap(model, dense_layers=dense_layers)

  def check_model(self):
    """Builds and wraps the configured model once, to validate `model.*`
    before anything is written; the Keras session is cleared afterwards so
    that layer names and seeds are as if it had never been built."""
    with self.strategy.scope():
      model = wrapper_lib.wrap(models.build_for(
          self.data, seed=self.config.seed, cfg=self.settings.model))
    if not wrapper_lib.wrappers(model):
      raise ConfigError('model.builder', f'{model.name!r} has no prunable '
                        'layer (Dense, Conv1D/2D, Embedding, ... in tfmot\'s '
                        'prune registry, or a tfmot PrunableLayer)')
    keras.backend.clear_session()

  def writer(self, net_dir):
    return summaries.file_writer(net_dir)

  def train(self, model, net_dir, hooks=(), extra=None, learning_rate=None,
            config=None, start_step=0, stop_step=None):
    """Trains one network in `net_dir` (resumes, never redoes finished work)."""
    self.trained += not rundir.is_finished(net_dir)
    result = training.train_network(
        model, self.data, config or self.config, self.strategy, net_dir,
        hooks=(list(hooks) + [summaries.TrainingScalars()]
               + summaries.default_hooks(self.settings.summaries)),
        writer=lambda: self.writer(net_dir), quiet=self.quiet, extra=extra,
        learning_rate=learning_rate, start_step=start_step,
        stop_step=stop_step)
    summaries.compact_events(net_dir)  # a resumed network: one file again
    return result

  def write_results(self, rows, branch=None):
    """Writes the results.csv of the run (or of a control branch)."""
    path = rundir.results_path(self.run_dir, branch)
    rundir.write_results(path, rows)
    self.results.pop(path, None)
    self.results[path] = list(rows)
