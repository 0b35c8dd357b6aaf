"""Hooks and helpers that read a run without changing its course.

* `RewindPoint(k)`: saves theta_k, the rewind point of late rewinding
  (`masks.set_rewind_point`), at step k (k = 0: before the first step).
* `BatchGradients(model, loss_fn)`: dense gradients of the mean loss on
  one batch, without changing the model; growth and saliency scores
  (RigL, SNIP) on a batch that is not the step's own.
"""
import sys

import tensorflow as tf

from tf_tickets import masks as masks_lib
from tf_tickets.errors import ConfigError
from tf_tickets.keras import batchnorm_layers
from tf_tickets.training.hook import Hook


class RewindPoint(Hook):
  """Saves theta_k (the rewind point) at step `step`; `setting` names the
  setting that chose k in errors."""

  def __init__(self, step, setting='lottery.rewind'):
    self.step, self.setting = int(step), setting
    self.fired = False  # theta_k saved (or there already, on a resume)

  def begin(self, ctx):
    if self.step >= ctx.run.total:
      raise ConfigError(self.setting, f'rewind step {self.step} is not '
                        f'before the end of training ({ctx.run.total} '
                        'steps)')
    if ctx.step > self.step:
      self.fired = True  # saved before the resume, in the checkpoint
    if self.step == 0 and ctx.step == 0:
      masks_lib.set_rewind_point(ctx.model)
      self.fired = True

  def next_event(self, step):
    return self.step if step < self.step else sys.maxsize

  def after_step(self, ctx, step, grads):
    if step == self.step:
      masks_lib.set_rewind_point(ctx.model)
      self.fired = True


class BatchGradients:
  """`grads(x, y)`: dense gradients (id(variable) -> array) of the mean of
  `loss_fn(y, model(x))` on the batch (x, y), in training mode, without
  changing the model: the BatchNorm moving statistics the forward pass
  updates are put back. Inputs keep their dtype (integer token ids stay
  integers); integer labels are taken as int32."""

  def __init__(self, model, loss_fn):
    self.model, self.loss_fn = model, loss_fn
    variables = model.trainable_variables
    # Distributed variables (tf.distribute): every replica takes the whole
    # batch, so each computes the same gradients; the first one's is read.
    strategy = getattr(variables[0], '_distribute_strategy', None)

    def gradients(x, y):
      with tf.GradientTape() as tape:
        loss = tf.reduce_mean(loss_fn(y, model(x, training=True)))
      return tape.gradient(loss, variables)

    @tf.function
    def fn(x, y):
      if strategy is None:
        return gradients(x, y)
      out = strategy.run(gradients, args=(x, y))
      return [None if g is None else strategy.experimental_local_results(g)[0]
              for g in out]

    self._fn = fn

  def __call__(self, x, y):
    model = self.model
    x = tf.nest.map_structure(tf.convert_to_tensor, x)
    y = tf.convert_to_tensor(y)
    if y.dtype.is_integer:
      y = tf.cast(y, tf.int32)
    stats = [v for l in batchnorm_layers(model)
             for v in (l.moving_mean, l.moving_variance)]
    saved = [v.numpy() for v in stats]
    grads = self._fn(x, y)
    for v, value in zip(stats, saved):
      v.assign(value)
    return {id(v): g.numpy() for v, g in zip(model.trainable_variables, grads)
            if g is not None}
