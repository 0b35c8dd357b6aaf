"""Lottery tickets: iterative magnitude pruning (IMP) with rewinding.

Level 0 trains the dense network. Each further level prunes
`lottery.pruning_fraction` of the remaining weights by magnitude (per layer
or globally, with per-layer overrides), rewinds the survivors and retrains
(Frankle & Carbin, ICLR 2019). `lottery.rewind` chooses what the survivors
restart from:

* 'init': theta_0, the original initialisation (the LTH paper);
* 'Nit' / 'Nep': theta_k saved at step k of level 0 (late rewinding,
  Frankle et al. "Stabilizing the LTH" / "Linear Mode Connectivity");
* 'none': the trained weights, fine-tuned at a constant, low learning rate
  (`lottery.finetune_learning_rate`; default: the schedule's final rate);
* 'lr': the trained weights with the whole LR schedule replayed
  (learning-rate rewinding, Renda et al. 2020).

The optimizer state is new at every level. Each level lives in
`RUN/level_<L>/` with `start/` (its starting weights: rewind point * mask),
`final/` (trained weights) and `result.json`; every saved checkpoint holds
masks, theta_0 and the rewind point too, so any level can be exported or
branched later. Levels are idempotent: a finished level is never redone, and
a larger `lottery.levels` extends a finished run.

Control branches (`lottery.branch`) run on the levels of the lottery run and
live beside it in `RUN/branch_<name>/` with their own results.csv:

* 'random_reinit': the level's masks, a fresh initialisation drawn from the
  same initializers (new seed);
* 'random_prune': random masks with the level's per-layer densities, the
  same rewind point.
"""

import os

from absl import logging
import gin

from tf_tickets import experiment
from tf_tickets import pruning
from tf_tickets import summaries
from tf_tickets import training
from tf_tickets.errors import ConfigError
from tf_tickets.errors import check_choice
from tf_tickets.errors import check_range

BRANCHES = ('random_reinit', 'random_prune')


@gin.configurable('lottery')
def lottery_config(levels=0, pruning_fraction=0.2, scope='layerwise',
                   layer_fractions=None, unpruned_layers=(), rewind='init',
                   finetune_learning_rate=None, branch=None, branch_seed=1):
  """Lottery settings (gin: `lottery.*`).

  Args:
    levels: number of pruned levels after the dense level 0.
    pruning_fraction: fraction of the remaining prunable weights removed per
      level.
    scope: 'layerwise' or 'global'.
    layer_fractions: dict layer name -> per-level fraction overriding
      `pruning_fraction` for that layer (e.g. {'output': 0.1}: the LTH output
      layer at half rate); such layers are pruned layerwise.
    unpruned_layers: layer names never pruned.
    rewind: 'init', a step such as '500it' or '2ep', 'none' or 'lr'.
    finetune_learning_rate: constant learning rate of rewind='none'.
    branch: None, 'random_reinit' or 'random_prune' (control branches).
    branch_seed: seeds the branch's new initialisation or random masks.
  """
  if isinstance(levels, bool) or not isinstance(levels, int) or levels < 0:
    raise ConfigError('lottery.levels', f'must be an integer >= 0, got '
                      f'{levels!r}')
  check_range('lottery.pruning_fraction', pruning_fraction, 0.0, 1.0,
              low_open=True)
  check_choice('lottery.scope', scope, pruning.SCOPES)
  for name, f in dict(layer_fractions or {}).items():
    check_range(f'lottery.layer_fractions[{name!r}]', f)
  if branch is not None:
    check_choice('lottery.branch', branch, BRANCHES)
  if finetune_learning_rate is not None:
    check_range('lottery.finetune_learning_rate', finetune_learning_rate,
                0.0, float('inf'), low_open=True)
  _rewind_kind(rewind)  # validates
  return dict(levels=levels, pruning_fraction=float(pruning_fraction),
              scope=scope, layer_fractions=dict(layer_fractions or {}),
              unpruned_layers=tuple(unpruned_layers), rewind=rewind,
              finetune_learning_rate=finetune_learning_rate, branch=branch,
              branch_seed=int(branch_seed))


def _rewind_kind(rewind):
  if rewind in ('init', 'none', 'lr'):
    return rewind
  try:
    training.parse_steps(rewind, 1, 'lottery.rewind')
  except ConfigError:
    raise ConfigError(
        'lottery.rewind', f'unknown value {rewind!r}; valid: \'init\', a step '
        'such as \'500it\' or \'2ep\' (late rewinding), \'none\' '
        '(fine-tuning) or \'lr\' (learning-rate rewinding)') from None
  return 'step'


class RewindPointHook(training.Hook):
  """Saves theta_k (the rewind point) at step k of level 0."""

  def __init__(self, step):
    self.step = step

  def begin(self, trainer):
    if self.step >= trainer.schedule.steps:
      raise ConfigError('lottery.rewind', f'rewind step {self.step} is not '
                        f'before the end of training ({trainer.schedule.steps} '
                        'steps)')
    if self.step == 0 and int(trainer.step_var.numpy()) == 0:
      pruning.set_rewind_point(trainer.model)

  def after_step(self, trainer, step, grads):
    if step == self.step:
      pruning.set_rewind_point(trainer.model)


def level_dir(run_dir, level, branch=None):
  base = os.path.join(run_dir, f'branch_{branch}') if branch else run_dir
  return os.path.join(base, f'level_{level}')


def _rewind_to(model, kind):
  if kind == 'init':
    pruning.rewind(model, 'init')
  elif kind == 'step':
    pruning.rewind(model, 'rewind_point')
  # 'none' / 'lr': keep the trained weights (already masked by pruning).


def _finetune_rate(ctx, cfg):
  if cfg['finetune_learning_rate'] is not None:
    return cfg['finetune_learning_rate']
  config = ctx.config
  schedule = training.resolve_schedule(config, ctx.data.steps_per_epoch)
  lr = training.LearningRate(config.learning_rate, config.lr_schedule,
                             schedule.steps, schedule.milestones,
                             config.lr_gamma)
  steps = schedule.steps
  return max(lr.value(steps - 1), 1e-12)


def _train_level(ctx, model, cfg, level, net_dir, branch=None):
  kind = _rewind_kind(cfg['rewind'])
  hooks = []
  if level == 0 and kind == 'step':
    k = training.parse_steps(cfg['rewind'], ctx.data.steps_per_epoch,
                             'lottery.rewind')
    hooks.append(RewindPointHook(int(round(k * ctx.config.steps_multiplier))))
  config = ctx.config
  learning_rate = None
  if level > 0 and kind == 'none':
    learning_rate = _finetune_rate(ctx, cfg)
    config = config.replace(lr_schedule='constant', warmup_steps=0,
                            lr_milestones=())
  extra = dict(level=level, branch=branch or 'lottery', method='imp',
               seed=ctx.config.seed, rewind=str(cfg['rewind']))
  return ctx.train(model, net_dir, hooks=hooks, extra=extra,
                   learning_rate=learning_rate, config=config)


def _prepare_level(model, cfg):
  """Prunes the trained weights of the previous level and rewinds."""
  pruning.prune_by_magnitude(
      model, cfg['pruning_fraction'], scope=cfg['scope'],
      fractions=cfg['layer_fractions'], skip=cfg['unpruned_layers'])
  _rewind_to(model, _rewind_kind(cfg['rewind']))


def run_levels(ctx, cfg, model):
  """Trains levels 0..levels (skipping finished ones); returns their rows."""
  rows, sums = [], summaries.LevelSummaries(ctx.run_dir)
  for level in range(cfg['levels'] + 1):
    net_dir = level_dir(ctx.run_dir, level)
    if level > 0 and not training.is_finished(net_dir):
      _prepare_level(model, cfg)
      if not os.path.exists(os.path.join(net_dir, 'start')):
        training.save_weights(model, os.path.join(net_dir, 'start'))
    elif level == 0 and not os.path.exists(os.path.join(net_dir, 'start')):
      training.save_weights(model, os.path.join(net_dir, 'start'))
    logging.info('lottery level %d of %d', level, cfg['levels'])
    sums.before(model, net_dir)
    rows.append(_train_level(ctx, model, cfg, level, net_dir))
    sums.after(model, rows[-1], rows)
    experiment.write_results(os.path.join(ctx.run_dir, 'results.csv'), rows)
  return rows


def _prepare_branch(ctx, model, cfg, level, branch):
  """Sets `model` to the branch's starting state for `level`."""
  seed = cfg['branch_seed'] * 1000003 + level
  if branch == 'random_reinit':
    training.load_weights(model, os.path.join(level_dir(ctx.run_dir, level),
                                              'start'))
    pruning.reinitialize(model, seed)
  else:
    ticket = training.read_json(
        os.path.join(level_dir(ctx.run_dir, level), 'result.json'))
    training.load_weights(
        model, os.path.join(level_dir(ctx.run_dir, level - 1), 'final'))
    pruning.prune_randomly(
        model, {k: 1.0 - d for k, d in ticket['layer_density'].items()}, seed)
    _rewind_to(model, _rewind_kind(cfg['rewind']))


def run_branch(ctx, cfg, branch):
  model = ctx.build_model()
  rows = []
  sums = summaries.LevelSummaries(
      os.path.join(ctx.run_dir, f'branch_{branch}'))
  for level in range(1, cfg['levels'] + 1):
    net_dir = level_dir(ctx.run_dir, level, branch)
    if not training.is_finished(net_dir):
      _prepare_branch(ctx, model, cfg, level, branch)
      if not os.path.exists(os.path.join(net_dir, 'start')):
        training.save_weights(model, os.path.join(net_dir, 'start'))
    logging.info('branch %s, level %d of %d', branch, level, cfg['levels'])
    sums.before(model, net_dir)
    rows.append(_train_level(ctx, model, cfg, level, net_dir, branch=branch))
    sums.after(model, rows[-1], rows)
    experiment.write_results(
        os.path.join(ctx.run_dir, f'branch_{branch}', 'results.csv'), rows)
  return rows


def run(ctx):
  cfg = lottery_config()
  model = ctx.build_model()
  rows = run_levels(ctx, cfg, model)
  logging.info('final density %.4f', rows[-1]['density'])
  if cfg['branch']:
    rows += run_branch(ctx, cfg, cfg['branch'])
  return rows
