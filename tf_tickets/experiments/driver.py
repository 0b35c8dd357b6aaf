"""The lottery on your own model and your own training: `run_lottery`.

    def build():                       # a fresh tf_keras model (not wrapped)
      return my_model()

    def train(model, level):           # your compile + fit, or any loop
      model.compile('adam', loss, metrics=['accuracy'])
      model.fit(train_ds, epochs=3, callbacks=level.callbacks, verbose=0)
      return {'test_accuracy': model.evaluate(test_ds, verbose=0)[1]}

    rows = tt.run_lottery(build, train, 'runs/mine', levels=5,
                          pruning_fraction=0.2, rewind='init')

It runs the command line's lottery (`experiments.lottery`: the levels,
layerwise or global pruning, per-layer rates, rewinding to theta_0 / to
step k / none / the learning rate, the control branches) with the same
settings (`LotterySettings`) and writes the same run directory:
`level_<L>/{start,final,result.json}`, TensorBoard events per level and
for the lottery, `results.csv` (and `branch_<b>/` for a branch). A rerun
skips finished levels; a level killed mid-training starts again from its
saved `start/` (the command line resumes from a checkpoint instead: your
loop owns its checkpoints). `config.json` holds the run's settings (your
`build` by its import path): a directory holding another configuration is
refused, and `python -m tf_tickets.export --run_dir=...` exports a level
when given the data (`--gin_param="dataset.loader = @my_data.load"`).

`train(model, level)` gets the wrapped model at the level's start (pruned
and rewound) and a `Level`: `callbacks` to pass to `model.fit` (the
rewind-point capture at level 0 for rewinding to step k, and the
TensorBoard dashboards), `start_step` (k for levels that continue from
step k: start your schedule and data there), `learning_rate` (the
constant fine-tuning rate of rewind='none', else None), `level`, `branch`,
`net_dir`. It returns a dict of figures (e.g. test_accuracy) added to the
level's results row. A loop other than `model.fit` must call the Keras
callbacks itself, or use rewind='init'.
"""
import dataclasses
import os
import types

from absl import logging
import tensorflow as tf

from tf_tickets import callbacks as callbacks_lib
from tf_tickets import masks as masks_lib
from tf_tickets import models
from tf_tickets import rundir
from tf_tickets import settings
from tf_tickets import training
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.errors import ConfigError
from tf_tickets.errors import check_int
from tf_tickets.experiments import lottery
from tf_tickets.experiments.context import Context
from tf_tickets.experiments.run_settings import RunSettings


@dataclasses.dataclass
class Level:
  """What `train(model, level)` gets (see the module docstring)."""
  level: int
  branch: str
  net_dir: str
  callbacks: list
  start_step: int = 0
  learning_rate: float = None


class _Own(Context):
  """The experiments' `Context` with your builder and training."""

  def __init__(self, run_dir, build, train_fn, steps_per_epoch,
               run_settings):
    super().__init__(run_dir=run_dir,
                     data=types.SimpleNamespace(
                         steps_per_epoch=steps_per_epoch),
                     settings=run_settings,
                     strategy=tf.distribute.get_strategy(), quiet=True)
    self.build, self.train_fn = build, train_fn

  def build_model(self, dense_layers=()):
    with self.strategy.scope():
      model = wrapper_lib.wrap(self.build(), dense_layers=dense_layers)
    if not wrapper_lib.wrappers(model):
      raise ConfigError('build', f'{model.name!r} has no prunable layer '
                        '(Dense, Conv1D/2D, Embedding, ... in tfmot\'s prune '
                        'registry, or a tfmot PrunableLayer)')
    return model

  def train(self, model, net_dir, hooks=(), extra=None, learning_rate=None,
            config=None, start_step=0, stop_step=None):
    del config, stop_step  # the schedule is your training's
    if rundir.is_finished(net_dir):
      finished = training.load_finished(model, net_dir)
      if finished is not None:
        return finished
    os.makedirs(net_dir, exist_ok=True)
    if rundir.has_start(net_dir):  # a level killed before: the same start
      rundir.load_weights(model, rundir.start_dir(net_dir))
    self.trained += 1
    extra = dict(extra or {})
    callback = callbacks_lib.HookCallback(hooks=hooks, log_dir=net_dir)
    level = Level(level=extra.get('level', 0), branch=extra.get('branch'),
                  net_dir=net_dir, callbacks=[callback],
                  start_step=start_step, learning_rate=learning_rate)
    figures = self.train_fn(model, level)
    missed = [h.step for h in hooks
              if isinstance(h, training.RewindPoint) and not h.fired]
    if missed:
      raise ConfigError(
          'rewind', f'the rewind point (step {missed[0]}) was not saved: '
          'level 0 must train through its callbacks (model.fit(..., '
          'callbacks=level.callbacks)) for at least that many steps, or '
          "use rewind='init'")
    if figures is not None and not isinstance(figures, dict):
      raise TypeError('train(model, level) returns a dict of figures (or '
                      f'None), not {type(figures).__name__}')
    result = masks_lib.result_figures(model)
    result.update(callback.result or {})
    result.update(figures or {})
    result.update(extra)
    rundir.save_weights(model, rundir.final_dir(net_dir))
    rundir.write_json(rundir.result_path(net_dir), result)
    return result


def _stamp(run_dir, run_settings):
  """Refuses a directory holding another run; stamps config.json."""
  stamp = rundir.read_stamp(run_dir)
  diff = stamp and settings.differing(stamp[0], run_settings.identity())
  if diff:
    raise ConfigError('output_dir', f'{run_dir!r} holds a run with a '
                      f'different configuration (differs in: '
                      f'{", ".join(diff[:6])}); use another output_dir')
  rundir.write_stamp(run_dir, run_settings.identity(),
                     run_settings.fingerprint(), run_settings.to_json())


def run_lottery(build, train, output_dir, steps_per_epoch=None, seed=0,
                **lottery_settings):
  """Runs the lottery on `build()`'s model trained by `train(model, level)`
  into `output_dir`; returns the rows of results.csv (and of the branch).

  `lottery_settings` are `experiments.lottery.LotterySettings` fields
  (levels, pruning_fraction, scope, layer_fractions, unpruned_layers,
  rewind, finetune_learning_rate, branch, branch_seed, branch_levels,
  criterion, block_size). `steps_per_epoch` resolves a rewind step given
  in epochs ('2ep'); `seed` seeds nothing of your training, only the
  results rows' `seed` field.
  """
  cfg = lottery.LotterySettings(**lottery_settings)
  kind = lottery.rewind_kind(cfg.rewind)
  if kind == 'none' and cfg.finetune_learning_rate is None:
    raise ConfigError('finetune_learning_rate', "required with rewind="
                      "'none' under run_lottery: the constant rate your "
                      'training fine-tunes at (level.learning_rate)')
  spe = check_int('steps_per_epoch', steps_per_epoch, 1, allow_none=True)
  if kind == 'step' and spe is None and 'ep' in str(cfg.rewind):
    raise ConfigError('steps_per_epoch', f'required for rewind='
                      f'{cfg.rewind!r} (a step given in epochs)')
  run_settings = RunSettings(
      training=training.TrainingConfig(seed=seed), lottery=cfg,
      model=models.ModelSettings(builder=build), dataset=None)
  ctx = _Own(os.fspath(output_dir), build, train, spe or 1, run_settings)
  _stamp(ctx.run_dir, run_settings)
  model = ctx.build_model()
  rows = lottery.run_levels(ctx, cfg, model)
  logging.info('final density %.4f', rows[-1]['density'])
  rows += lottery.run_branches(ctx, cfg)
  return rows
