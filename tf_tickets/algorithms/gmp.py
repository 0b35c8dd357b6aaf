"""Gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune").

Starts dense; each layer with a target sparsity > 0 follows the polynomial
schedule of `tfmot.sparsity.keras.PolynomialDecay` (gin `gmp.*`, see
`GMPSettings`) whose final value is the layer's target: `Polynomial`, the
same arithmetic in float32 on numpy (tests check it against tfmot's). At
its pruning steps (and at `gmp.end_step`) the layer's active weights with
the smallest magnitude are pruned until round((1 - s(t)) * size) remain.
Masks only shrink.
"""
import dataclasses

import numpy as np

from tf_tickets import topk
from tf_tickets.algorithms.base import Algorithm
from tf_tickets.algorithms.base import MaskUpdate
from tf_tickets.algorithms.settings import GMPSettings
from tf_tickets.algorithms.settings import METHODS
from tf_tickets.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Polynomial:
  """tfmot's `PolynomialDecay`: s(t) = final + (initial - final) *
  (1 - p)^power with p = clip((t - begin) / (end - begin), 0, 1), in
  float32 as tfmot computes it (numpy's float32 pow may differ from
  TensorFlow's in the last bit: the kept counts agree, see the tests);
  pruning turns every `frequency` steps from `begin` to `end`."""
  initial: float
  final: float
  begin: int
  end: int
  power: float
  frequency: int

  def __call__(self, step):
    """(should_prune, sparsity) at `step`, as tfmot's schedule returns."""
    f32 = np.float32
    p = f32(step - self.begin) / f32(self.end - self.begin)
    p = min(f32(1.0), max(f32(0.0), f32(p)))
    sparsity = (f32(self.initial - self.final)
                * np.power(f32(1.0) - p, f32(self.power)) + f32(self.final))
    turn = (self.begin <= step <= self.end
            and (step - self.begin) % self.frequency == 0)
    return turn, float(sparsity)

  def next(self, step):
    """The first pruning turn (or `end`) after `step`, or None."""
    if step >= self.end:
      return None
    if step < self.begin:
      return self.begin
    turn = self.begin + ((step - self.begin) // self.frequency + 1) * (
        self.frequency)
    return min(turn, self.end)


@METHODS.register('gmp')
class GMP(Algorithm):
  """Gradual magnitude pruning on tfmot's polynomial schedule."""
  starts_dense = True

  def __init__(self, cfg, sparsities, seed, run, layouts=None, gmp=None):
    super().__init__(cfg, sparsities, seed, run, layouts)
    self.gmp = gmp = gmp if gmp is not None else GMPSettings()
    self.begin_step = run.resolve(gmp.begin_step, 'gmp.begin_step')
    self.end_step = run.resolve(gmp.end_step, 'gmp.end_step')
    if self.end_step > run.total:
      raise ConfigError('gmp.end_step', f'{gmp.end_step!r} is step '
                        f'{self.end_step}, after the end of training '
                        f'({run.total} steps)')
    if self.begin_step >= self.end_step:
      raise ConfigError('gmp.begin_step', f'{gmp.begin_step!r} is step '
                        f'{self.begin_step}, not before gmp.end_step '
                        f'(step {self.end_step})')
    self.schedules = {}
    for k, final in self.unit_sparsities.items():
      if float(final) > 0.0:
        self.schedules[k] = Polynomial(
            initial=min(gmp.initial_sparsity, float(final)),
            final=float(final), begin=self.begin_step, end=self.end_step,
            power=gmp.power, frequency=gmp.frequency)

  def sparsity_at(self, key, step):
    """(should_prune, sparsity) of `key`'s schedule at `step`."""
    return self.schedules[key](step)

  def wants_update(self, step):
    if not self.schedules or not self.begin_step <= step <= self.end_step:
      return False
    first = next(iter(self.schedules))
    return self.sparsity_at(first, step)[0] or step == self.end_step

  def next_update(self, step):
    if not self.schedules:
      return None
    return next(iter(self.schedules.values())).next(step)

  def compute(self, step, masks, weights, grads, lr_ratio=1.0):
    new_masks, stats = {}, {}
    for key, mask in masks.items():
      active = int(np.count_nonzero(mask))
      stats[key] = dict(dropped=0, grown=0, regrown=0, active=active)
      if key not in self.schedules:
        continue
      if step >= self.end_step:
        target = float(self.unit_sparsities[key])
      else:
        target = self.sparsity_at(key, step)[1]
      stats[key]['sparsity'] = target
      keep = int(round((1.0 - target) * mask.size))
      if active <= keep:
        continue
      mask = mask.copy()
      drop = topk.drop_lowest(mask, np.abs(weights[key]), active - keep)
      stats[key].update(dropped=int(drop.size), active=keep)
      new_masks[key] = mask
    if not new_masks:  # e.g. s(begin_step) = initial_sparsity = 0
      return None
    active = sum(int(np.count_nonzero(new_masks.get(k, m)))
                 for k, m in masks.items())
    total = sum(m.size for m in masks.values())
    return MaskUpdate(new_masks, {}, stats,
                      label=f'sparsity={1.0 - active / total:.4f}')

  def training_flops(self, sparse, dense):
    """The mean over training of 3 f(t): each layer dense until
    `begin_step`, then at the sparsity of its last pruning step."""
    del sparse
    total = self.run.total
    t = np.arange(total)
    pruned = np.zeros(total)
    steps = sorted(set(range(self.begin_step, self.end_step + 1,
                             self.gmp.frequency)) | {self.end_step})
    flops = 0.0
    for key, f_dense in dense.items():
      if key not in self.schedules:
        flops += f_dense * total
        continue
      pruned[:] = 0.0
      for s in steps:  # pruned after step s: applies from step s on
        target = (float(self.unit_sparsities[key]) if s >= self.end_step
                  else self.sparsity_at(key, s)[1])
        pruned[t >= s] = target
      flops += f_dense * float(np.sum(1.0 - pruned))
    return 3 * flops / total

  def result(self):
    return dict(gmp_begin_step=self.begin_step, gmp_end_step=self.end_step)
