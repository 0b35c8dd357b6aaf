"""'stability': instability analysis (Frankle et al., ICML 2020, "Linear
Mode Connectivity and the Lottery Ticket Hypothesis").

For each rewind step k in `stability.rewind_steps`: the network at step k
of one training run (theta_k; the "parent", seeded by `training.seed`) is
trained to the end twice, by two copies that differ only in their data
order (`stability.data_seeds`); then the error and loss are evaluated at
`stability.points` networks on the straight line between the two final
networks. The **error barrier** is the maximum test error on the path minus
the mean of the two endpoints' errors (0: linearly connected, stable to SGD
noise). The paper picks the late-rewinding step where the barrier falls to
about 0.

`stability.level = L` analyses the masks of level L of the lottery run
`stability.lottery_dir` applied to theta_k of the dense parent; None
analyses the dense network. The lottery run must have the same model, data
and training seed (checked). The paper's test of IMP tickets pairs each k
with the IMP run rewound to that k: for it, run the lottery with
`lottery.rewind = 'k it'` and analyse `stability.rewind_steps = (k,)`; with
several k and one lottery run, every k gets the same mask (found with that
run's rewinding), which is a different question.

BatchNorm: at every point on the path the normalisation statistics are
recomputed on `stability.bn_batches` training batches (the mean of the
per-batch statistics), as the paper does for its ResNets; interpolated
moving statistics would describe neither network.

Layout (`tf_tickets.rundir`): `RUN/parent/` trains the dense network to
max k, saving theta_k into `RUN/k_<k>/start/`; `RUN/k_<k>/copy_<i>/` are
the two copies (ordinary, resumable networks); `RUN/k_<k>/stability.json`
holds the path and marks k as done. `results.csv`: one row per k.
"""
import sys
import os

from absl import logging
import numpy as np

from tf_tickets import data as data_lib
from tf_tickets import masks as masks_lib
from tf_tickets import rundir
from tf_tickets import settings
from tf_tickets import steps
from tf_tickets import summaries
from tf_tickets import training
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.errors import ConfigError
from tf_tickets.errors import check_int
from tf_tickets.experiments.context import KINDS
from tf_tickets.keras import batchnorm_layers


@settings.section('stability')
class StabilitySettings(settings.Settings):
  """Instability analysis (gin: `stability.*`).

  rewind_steps: the steps k to analyse (500, '500it', '1ep' forms; scaled
    by training.steps_multiplier like the training steps).
  points: networks evaluated on the path between the copies (>= 3).
  data_seeds: the data-order seeds of the two copies.
  level: None (the dense network) or a level of `lottery_dir` whose masks
    are analysed.
  lottery_dir: a lottery run directory (needed with `level`).
  bn_batches: training batches used to recompute BatchNorm statistics at
    each point (networks without BatchNorm ignore it).
  """
  rewind_steps: tuple = (0, 100, 500, 2000)
  points: int = 30
  data_seeds: tuple = (1, 2)
  level: int = None
  lottery_dir: str = None
  bn_batches: int = 20

  def validate(self):
    self.set('rewind_steps', tuple(self.rewind_steps))
    if not self.rewind_steps:
      raise ConfigError('stability.rewind_steps', 'give at least one step')
    for k in self.rewind_steps:
      steps.parse(k, 'stability.rewind_steps')
    self.set('points', check_int('stability.points', self.points, 3))
    seeds = tuple(self.data_seeds)
    if len(seeds) != 2:
      raise ConfigError('stability.data_seeds', f'expected two seeds, got '
                        f'{self.data_seeds!r}')
    self.set('data_seeds', tuple(check_int('stability.data_seeds', s, 0)
                                 for s in seeds))
    self.set('level', check_int('stability.level', self.level, 0,
                                allow_none=True))
    if self.level is not None and not self.lottery_dir:
      raise ConfigError('stability.lottery_dir', 'required with '
                        'stability.level: the lottery run whose masks to use')
    self.set('bn_batches', check_int('stability.bn_batches', self.bn_batches,
                                     1))


class _Capture(training.Hook):
  """Saves the whole network at the steps `ks` into `RUN/k_<k>/start`."""

  def __init__(self, run_dir, ks):
    self.run_dir, self.ks = run_dir, set(ks)

  def save(self, model, step):
    if step in self.ks:
      rundir.save_weights(model, rundir.start_dir(
          rundir.stability_dir(self.run_dir, step)))

  def begin(self, ctx):
    if ctx.step == 0:
      self.save(ctx.model, 0)

  def next_event(self, step):
    later = [k for k in self.ks if k > step]
    return min(later) if later else sys.maxsize

  def after_step(self, ctx, step, grads):
    self.save(ctx.model, step)


_SAME = ('training.seed', 'model.', 'dataset.')
_WHERE_DATA_IS = ('dataset.idx_dir', 'dataset.data_dir')  # not what it is


def _check_same_network(ctx, lottery_dir):
  """Refuses a lottery run whose model, data or seed differ from ours."""
  theirs = rundir.read_settings(lottery_dir)
  if theirs is None:  # an older run, or one made in process
    logging.warning('stability: cannot check that %s trained the same '
                    'network (its config.json holds no settings)', lottery_dir)
    return
  ours = settings.to_json(ctx.settings.sections())
  flat = lambda sections: {f'{ns}.{k}': v for ns, fields in sections.items()
                           for k, v in fields.items()}
  theirs, ours = flat(theirs), flat(ours)
  diff = sorted(k for k in set(theirs) | set(ours)
                if k.startswith(_SAME) and k not in _WHERE_DATA_IS
                and theirs.get(k) != ours.get(k))
  if diff:
    raise ConfigError('stability.lottery_dir', f'{lottery_dir!r} trained a '
                      'different network (differs in: ' + ', '.join(diff)
                      + '); its masks do not fit this run')


def _ticket_masks(ctx, cfg):
  """The masks of level `cfg.level` of the lottery run (None: dense)."""
  if cfg.level is None:
    return None
  _check_same_network(ctx, cfg.lottery_dir)
  net_dir = rundir.level_dir(cfg.lottery_dir, cfg.level)
  if not rundir.is_finished(net_dir):
    raise ConfigError('stability.level', f'level {cfg.level} of '
                      f'{cfg.lottery_dir!r} is not a finished lottery level')
  model = ctx.build_model()
  rundir.load_weights(model, rundir.final_dir(net_dir))
  return masks_lib.get_masks(model)


def _interpolate(sources, a, b, alpha):
  """(1 - alpha) a + alpha b; exactly a at 0 and b at 1 (and a = b gives
  a everywhere), so the endpoints are the trained networks."""
  for v, x, y in zip(sources, a, b):
    if alpha == 1.0:
      v.assign(y)
    elif x.dtype.kind != 'f':
      v.assign(x)
    else:
      v.assign(x + np.asarray(alpha, x.dtype) * (y - x))


def _recompute_batchnorm(model, data, seed, batches):
  """Sets BatchNorm moving statistics to the mean of `batches` training
  batches' statistics (momentum i / (i + 1) for batch i)."""
  bns = batchnorm_layers(model)
  if not bns:
    return
  momenta = [l.momentum for l in bns]
  it = iter(data_lib.train_dataset(data, seed))
  try:
    for i in range(batches):
      for l in bns:
        l.momentum = i / (i + 1)
      model(next(it)[0], training=True)
  finally:
    for l, m in zip(bns, momenta):
      l.momentum = m


def _path(ctx, cfg, model, finals):
  """Error and loss at `cfg.points` networks between the two copies."""
  variables = [v for v in model.weights
               if id(v) not in wrapper_lib.bookkeeping(model)]
  ends = []
  for final in finals:
    rundir.load_weights(model, final)
    ends.append([v.numpy() for v in variables])
  evaluate = training.Evaluator(
      model, ctx.data, ctx.strategy,
      training.use_xla(ctx.config.jit_compile, model))
  errors, losses = [], []
  for alpha in np.linspace(0.0, 1.0, cfg.points):
    _interpolate(variables, ends[0], ends[1], alpha)
    _recompute_batchnorm(model, ctx.data, ctx.config.seed, cfg.bn_batches)
    loss, accuracy = evaluate('test')
    errors.append(1.0 - accuracy)
    losses.append(loss)
  return errors, losses


def analyse_step(ctx, cfg, k, masks):
  """Trains the two copies from theta_k and evaluates the path."""
  done = rundir.stability_path(ctx.run_dir, k)
  if os.path.exists(done):
    return rundir.read_json(done)
  finals = []
  for i, seed in enumerate(cfg.data_seeds):
    model = ctx.build_model()
    rundir.load_weights(model, rundir.start_dir(
        rundir.stability_dir(ctx.run_dir, k)))
    if masks is not None:
      masks_lib.set_masks(model, masks)
    net_dir = rundir.copy_dir(ctx.run_dir, k, i)
    ctx.train(model, net_dir, config=ctx.config.replace(seed=seed),
              start_step=k, extra=dict(k=k, copy=i, data_seed=seed))
    finals.append(rundir.final_dir(net_dir))
  errors, losses = _path(ctx, cfg, ctx.build_model(), finals)
  ends = (errors[0] + errors[-1]) / 2.0
  row = dict(k=k, level=cfg.level, branch='stability', method='stability',
             seed=ctx.config.seed, error_barrier=max(errors) - ends,
             loss_barrier=max(losses) - (losses[0] + losses[-1]) / 2.0,
             error_a=errors[0], error_b=errors[-1], max_error=max(errors),
             errors=errors, losses=losses,
             data_seeds=list(cfg.data_seeds))
  rundir.write_json(done, row)
  return row


def table(rows):
  """A markdown table of the error barrier per rewind step k."""
  lines = ['| k | error barrier | loss barrier | error A | error B |',
           '|---|---|---|---|---|']
  for r in rows:
    lines.append(f'| {r["k"]} | {r["error_barrier"]:.4f} '
                 f'| {r["loss_barrier"]:.4f} | {r["error_a"]:.4f} '
                 f'| {r["error_b"]:.4f} |')
  return '\n'.join(lines)


@KINDS.register('stability')
def run(ctx):
  cfg = ctx.settings.stability
  ks = sorted({steps.resolve(k, 'stability.rewind_steps',
                             ctx.data.steps_per_epoch,
                             multiplier=ctx.config.steps_multiplier)
               for k in cfg.rewind_steps})
  total = training.resolve_schedule(ctx.config, ctx.data.steps_per_epoch).steps
  if ks[-1] >= total:
    raise ConfigError('stability.rewind_steps', f'step {ks[-1]} is not before '
                      f'the end of training ({total} steps)')
  masks = _ticket_masks(ctx, cfg)
  if not all(rundir.has_start(rundir.stability_dir(ctx.run_dir, k))
             for k in ks):
    model = ctx.build_model()
    if ks[-1] == 0:
      _Capture(ctx.run_dir, ks).save(model, 0)
    else:
      ctx.train(model, rundir.parent_dir(ctx.run_dir),
                hooks=[_Capture(ctx.run_dir, ks)], stop_step=ks[-1],
                extra=dict(branch='parent'))
  rows = []
  for k in ks:
    logging.info('stability: rewind step %d', k)
    rows.append(analyse_step(ctx, cfg, k, masks))
    ctx.write_results(rows)
    logging.info('stability: k=%d error barrier %.4f', k,
                 rows[-1]['error_barrier'])
  summaries.write_stability(ctx.run_dir, rows)
  return rows

