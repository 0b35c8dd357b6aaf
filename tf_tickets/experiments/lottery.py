"""'lottery': iterative magnitude pruning (IMP) with rewinding.

Level 0 trains the dense network. Each further level prunes
`lottery.pruning_fraction` of the remaining weights (criterion
`lottery.criterion`, per layer or globally, with per-layer overrides),
rewinds the survivors and retrains (Frankle & Carbin, ICLR 2019).
`lottery.rewind` chooses what the survivors restart from:

* 'init': theta_0, the original initialisation (the LTH paper);
* 'Nit' / 'Nep': theta_k saved at step k of level 0 (late rewinding,
  Frankle et al. "Stabilizing the LTH" / "Linear Mode Connectivity");
* 'none': the trained weights, fine-tuned at a constant, low learning rate
  (`lottery.finetune_learning_rate`; default: the schedule's final rate);
* 'lr': the trained weights with the whole LR schedule replayed
  (learning-rate rewinding, Renda et al. 2020).

The optimizer state is new at every level. Each level lives in
`RUN/level_<L>/` with `start/` (its starting weights), `final/` and
`result.json`; every saved checkpoint holds masks, theta_0 and the rewind
point too, so any level can be exported or branched later. Levels are
idempotent: a finished level is never redone, and a larger
`lottery.levels` extends a finished run.

Control branches (`lottery.branch`, registry `BRANCHES`, see
`tf_tickets.experiments.branches`) run on the levels of the lottery run and
live beside it in `RUN/branch_<name>/` with their own results.csv.
"""
import math

from absl import logging

from tf_tickets import algorithms
from tf_tickets import blocks
from tf_tickets import masks as masks_lib
from tf_tickets import pruning
from tf_tickets import rundir
from tf_tickets import settings
from tf_tickets import steps
from tf_tickets import summaries
from tf_tickets import training
from tf_tickets.errors import ConfigError
from tf_tickets.errors import check_choice
from tf_tickets.errors import check_int
from tf_tickets.errors import check_mapping
from tf_tickets.errors import check_range
from tf_tickets.experiments.context import KINDS

# Control branches: `@BRANCHES.register('name')` on a `Branch`.
BRANCHES = settings.Registry('lottery.branch')
REWIND_NAMES = ('init', 'none', 'lr')


@settings.section('lottery')
class LotterySettings(settings.Settings):
  """Lottery settings (gin: `lottery.*`).

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
  branch: None, a registered control branch ('random_reinit',
    'random_prune'), or several in a tuple (each run in turn).
  branch_seed: seeds the branch's new initialisation or random masks.
  branch_levels: the levels the branch trains, e.g. (3, 6, 9, 12, 15)
    (default: every level 1..levels); each level's control depends only
    on that level of the lottery run.
  criterion: the pruning criterion, a name in `algorithms.CRITERIA`
    ('magnitude').
  block_size: None (element masks) or a block size of Dense kernels,
    (inputs, outputs) such as (16, 1) (n means (n, 1)): levels prune whole
    blocks by the root mean square of their weights, and 'random_prune'
    draws random whole blocks (`tf_tickets.blocks`); (16, 1) is what LiteRT
    runs sparse natively.
  structure: None (element masks), 'unit' or 'refill' (`tf_tickets.
    structure`): every layer but the output layer loses whole units
    (neurons, conv output channels), so the ticket exports as a smaller
    dense network (`export.compact`). 'unit' removes
    round(pruning_fraction * alive units) per level by their L2 norm (the
    naive baseline); 'refill' is IMP-Refill (Chen et al. 2022): the
    element pruning sets each layer's count, the units with the largest
    L1 norm are refilled densely to it. 'random_prune' then draws random
    whole units with the ticket's counts.
  """
  levels: int = settings.resumable(0)
  pruning_fraction: float = 0.2
  scope: str = 'layerwise'
  layer_fractions: dict = None
  unpruned_layers: tuple = ()
  rewind: object = 'init'
  finetune_learning_rate: float = None
  branch: str = settings.resumable(None)
  branch_seed: int = settings.resumable(1)
  branch_levels: tuple = settings.resumable(None)
  criterion: str = 'magnitude'
  block_size: object = None
  structure: str = None

  def validate(self):
    self.set('block_size', blocks.parse(self.block_size,
                                        'lottery.block_size'))
    self.set('levels', check_int('lottery.levels', self.levels, 0))
    self.set('pruning_fraction', check_range(
        'lottery.pruning_fraction', self.pruning_fraction, 0.0, 1.0,
        low_open=True))
    check_choice('lottery.scope', self.scope, algorithms.imp.SCOPES)
    fractions = check_mapping('lottery.layer_fractions', self.layer_fractions,
                              'layer name -> fraction')
    for name, f in fractions.items():
      check_range(f'lottery.layer_fractions[{name!r}]', f)
    self.set('layer_fractions', fractions)
    self.set('unpruned_layers', tuple(self.unpruned_layers))
    if self.branch is not None:
      names = ((self.branch,) if isinstance(self.branch, str)
               else tuple(self.branch))
      for name in names or (None,):
        BRANCHES.get(name)
      self.set('branch', names[0] if len(names) == 1 else names)
    if self.finetune_learning_rate is not None:
      check_range('lottery.finetune_learning_rate',
                  self.finetune_learning_rate, 0.0, math.inf, low_open=True)
    self.set('branch_seed', check_int('lottery.branch_seed',
                                      self.branch_seed, 0))
    if self.branch_levels is not None:
      if isinstance(self.branch_levels, int):
        self.set('branch_levels', (self.branch_levels,))
      levels = tuple(sorted({check_int('lottery.branch_levels', lv, 1)
                             for lv in self.branch_levels}))
      if not levels or levels[-1] > self.levels:
        raise ConfigError('lottery.branch_levels', f'{self.branch_levels!r}: '
                          'give levels in 1..lottery.levels '
                          f'({self.levels})')
      self.set('branch_levels', levels)
    algorithms.CRITERIA.get(self.criterion)
    algorithms.check_structure(self.structure, self.scope, self.block_size)
    rewind_kind(self.rewind)  # validates

  def rewind_step(self, data, multiplier):
    """The late-rewinding step k (scaled like the training steps)."""
    return steps.resolve(self.rewind, 'lottery.rewind', data.steps_per_epoch,
                         multiplier=multiplier)


def rewind_kind(rewind):
  """'init', 'none', 'lr' or 'step' (late rewinding to a step)."""
  if rewind in REWIND_NAMES:
    return rewind
  try:
    steps.parse(rewind, 'lottery.rewind')
  except ConfigError:
    raise ConfigError(
        'lottery.rewind', f'unknown value {rewind!r}; valid: \'init\', a step '
        'such as \'500it\' or \'2ep\' (late rewinding), \'none\' '
        '(fine-tuning) or \'lr\' (learning-rate rewinding)') from None
  return 'step'


def rewind_to(model, cfg):
  """Sets the survivors to the rewind point of `cfg.rewind`."""
  kind = rewind_kind(cfg.rewind)
  if kind == 'init':
    masks_lib.rewind(model, 'init')
  elif kind == 'step':
    masks_lib.rewind(model, 'rewind_point')
  # 'none' / 'lr': keep the trained weights (already masked by pruning).


def finetune_rate(ctx, cfg):
  """The constant rate of rewind='none': `lottery.finetune_learning_rate`,
  else the final rate of the schedule the levels train with (warmup
  included). A default below 1% of the base rate (cosine and linear
  schedules end near 0) is refused: fine-tuning at ~0 would not train."""
  if cfg.finetune_learning_rate is not None:
    return cfg.finetune_learning_rate
  config = ctx.config
  schedule = training.resolve_schedule(config, ctx.data.steps_per_epoch)
  final = training.LearningRate.of(config, schedule).value(schedule.steps - 1)
  if final < 0.01 * config.learning_rate:
    raise ConfigError(
        'lottery.finetune_learning_rate', f'required with lottery.rewind = '
        f"'none' and training.lr_schedule = {config.lr_schedule!r}: the "
        f'schedule ends at {final:.3g}, below 1% of the base rate '
        f'{config.learning_rate:g}; set it, e.g. to the rate fine-tuning '
        'should use (Renda et al. 2020 use the final rate of the original '
        'schedule)')
  return final


def train_level(ctx, model, cfg, level, net_dir, branch=None):
  """Trains one level (of the lottery or of a branch) in `net_dir`."""
  kind = rewind_kind(cfg.rewind)
  hooks, start_step = [], 0
  if kind == 'step':
    k = cfg.rewind_step(ctx.data, ctx.config.steps_multiplier)
    if level == 0:
      hooks.append(training.RewindPoint(k))
    else:  # continue at step k: LR schedule and data order resume there
      start_step = k
  config = ctx.config
  learning_rate = None
  if level > 0 and kind == 'none':
    learning_rate = finetune_rate(ctx, cfg)
    config = config.replace(lr_schedule='constant', warmup_steps=0,
                            lr_milestones=())
  extra = dict(level=level, branch=branch or 'lottery', method='imp',
               seed=ctx.config.seed, rewind=str(cfg.rewind))
  return ctx.train(model, net_dir, hooks=hooks, extra=extra,
                   learning_rate=learning_rate, config=config,
                   start_step=start_step)


def prepare_level(model, cfg):
  """Prunes the trained weights of the previous level and rewinds."""
  pruning.prune(model, cfg.pruning_fraction, scope=cfg.scope,
                fractions=cfg.layer_fractions, skip=cfg.unpruned_layers,
                criterion=cfg.criterion, block=cfg.block_size,
                structure=cfg.structure)
  rewind_to(model, cfg)


def _train_levels(ctx, cfg, model, levels, prepare, branch=None):
  """Trains `levels` (skipping finished ones); writes the results.csv."""
  rows, sums = [], summaries.LevelSummaries(
      ctx.run_dir, branch, enabled=ctx.settings.summaries.enabled)
  for i, level in enumerate(levels):
    net_dir = rundir.level_dir(ctx.run_dir, level, branch)
    if not rundir.is_finished(net_dir):
      prepare(level)
      if not rundir.has_start(net_dir):
        rundir.save_weights(model, rundir.start_dir(net_dir))
    logging.info('%s level %d (network %d of %d)', branch or 'lottery',
                 level, i + 1, len(levels))
    sums.before(model, net_dir)
    rows.append(train_level(ctx, model, cfg, level, net_dir, branch))
    sums.after(model, rows[-1], rows)
    ctx.write_results(rows, branch)
  return rows


def run_levels(ctx, cfg, model):
  """Trains levels 0..levels of the lottery; returns their rows. Level L
  starts from level L-1's trained network read from its final/ (not from
  whatever the model object holds), pruned and rewound."""
  def prepare(level):
    if level > 0:
      previous = rundir.level_dir(ctx.run_dir, level - 1)
      rundir.load_weights(model, rundir.final_dir(previous))
      prepare_level(model, cfg)
  return _train_levels(ctx, cfg, model, range(cfg.levels + 1), prepare)


class Branch:
  """A control branch: how a level's network starts (`prepare`)."""
  name = None

  def prepare(self, ctx, model, cfg, level):
    """Sets `model` to the branch's starting state for `level` >= 1."""
    raise NotImplementedError

  def seed(self, cfg, level):
    return cfg.branch_seed * 1000003 + level


def branches(cfg):
  """The names of `cfg.branch` (None, a name or a tuple of names)."""
  if cfg.branch is None:
    return ()
  return (cfg.branch,) if isinstance(cfg.branch, str) else tuple(cfg.branch)


def run_branches(ctx, cfg):
  """Trains each control branch of `cfg.branch` on `cfg.branch_levels`
  (all levels 1..levels by default); returns their rows."""
  rows = []
  for name in branches(cfg):
    branch = BRANCHES.get(name)()
    model = ctx.build_model()
    rows += _train_levels(
        ctx, cfg, model, cfg.branch_levels or range(1, cfg.levels + 1),
        lambda level, b=branch, m=model: b.prepare(ctx, m, cfg, level), name)
  return rows


@KINDS.register('lottery')
def run(ctx):
  cfg = ctx.settings.lottery
  if rewind_kind(cfg.rewind) == 'none':
    finetune_rate(ctx, cfg)  # validates before anything trains
  model = ctx.build_model()
  rows = run_levels(ctx, cfg, model)
  logging.info('final density %.4f', rows[-1]['density'])
  rows += run_branches(ctx, cfg)
  return rows
