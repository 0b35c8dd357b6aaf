"""Keras callbacks: tf_tickets' hooks in `model.fit`, on your own model.

    model = tt.wrap(my_model)          # any functional or Sequential tf_keras
    model.compile(optimizer, loss, metrics=['accuracy'])
    rigl = tt.callbacks.SparseTraining(method='rigl', sparsity=0.9,
                                       data=train_ds, log_dir='logs/rigl')
    model.fit(train_ds, epochs=5, callbacks=[rigl])
    print(rigl.result['density']); tt.strip(model)   # plain sparse model

The callbacks run the very hooks `python -m tf_tickets.train` runs
(`training.MaskHook` with the algorithm `algorithms.make` builds, the
rewind-point capture, the TensorBoard summaries), through the same
`training.RunContext`, so the masks are written, grown weights and their
optimizer slots zeroed and the dashboards drawn by the same code. Pruned
weights stay exactly 0 after every step (the wrapper's constraint, which
every Keras optimizer applies). Under `tf.distribute` the callbacks run in
cross-replica context, so every replica gets the same masks.

Differences from the command line's loop, each a consequence of
`model.fit` owning the step:
* the step's own batch is not visible to a callback: a method that scores
  growth on dense gradients (RigL) takes them on the next batch of
  `data` (a fresh training batch, as the step's own would be), or on a
  fixed batch of `sparse_training.grow_batch_size` examples of `data` (as
  rigl_tf2 does); on the command line `grow_batch_size` behaves the same;
* skipping the weight update of a mask-update step
  (`skip_update_on_mask_steps`, the RigL paper's default) restores the
  weights and optimizer slots of before that step, so it needs one step
  per call (`steps_per_execution` = 1) on those steps: with larger
  `steps_per_execution` set `skip_update_on_mask_steps=False`;
* with `steps_per_execution` = k, every hook event (mask updates, the
  rewind step) must fall on a multiple of k, where a call ends; a run
  whose events do not is stopped with an error naming both.
Hook state (the grown-connection bookkeeping) lives for one `fit` call: a
second `fit` keeps the masks and weights but starts new bookkeeping (its
churn and survival count from there).
"""
import math

import numpy as np
import tensorflow as tf

from tf_tickets import algorithms
from tf_tickets import masks as masks_lib
from tf_tickets import pruning
from tf_tickets import summaries
from tf_tickets import training
from tf_tickets.errors import ConfigError
from tf_tickets.keras import keras


class HookCallback(keras.callbacks.Callback):
  """Runs `training.Hook`s in `model.fit` (see the module docstring).

  Args:
    steps: the run's total training steps; None: `epochs` x steps per
      epoch, as `fit` says (needed when the dataset has no known length).
    log_dir: TensorBoard directory: the loop's scalars (loss, learning
      rate, validation) and the sparsity dashboards; None: none.
    data: training examples for the hooks that score on a batch (RigL's
      gradients): a `tf.data.Dataset` of (x, y) batches or (x, y) arrays.
    loss: per-example loss(y, outputs) for those scores; None: the loss
      the model was compiled with.
    base_learning_rate: the base rate for the 'lr' drop-fraction decay;
      None: the schedule's `initial_learning_rate`, or the optimizer's
      constant rate.
    log_every: steps between the loop's scalars (loss, learning rate).
    summaries: the sparsity dashboards (`summaries.SummaryHook`) as well
      as the loop's scalars, if `log_dir` is given.
    hooks: further `training.Hook`s to run.
  """

  def __init__(self, steps=None, log_dir=None, data=None, loss=None,
               base_learning_rate=None, log_every=100, summaries=True,
               hooks=()):
    super().__init__()
    self.extra_hooks = list(hooks)
    self._supports_tf_logs = True  # no host copy of the logs per batch
    self.steps, self.log_dir, self.data = steps, log_dir, data
    self.loss, self.base_learning_rate = loss, base_learning_rate
    self.log_every, self.with_summaries = int(log_every), summaries
    self.ctx, self.hooks, self.result = None, [], None
    self._scoring = None

  # -- what subclasses add --------------------------------------------------
  def make_hooks(self, run):
    """The hooks of a run of `run` (`algorithms.RunSteps`); subclasses add
    theirs to these."""
    del run
    return list(self.extra_hooks)

  # -- Keras API -------------------------------------------------------------
  def on_train_begin(self, logs=None):
    model = self.model
    optimizer = model.optimizer
    if hasattr(optimizer, 'build'):  # slots exist before masks are written
      optimizer.build(model.trainable_variables)
    per_epoch = self.params.get('steps')
    total = self.steps or (per_epoch * self.params.get('epochs', 1)
                           if per_epoch else None)
    if not total:
      raise ConfigError('steps', 'the dataset has no known length: pass '
                        'steps=<total training steps> to the callback')
    run = algorithms.RunSteps(int(total), int(per_epoch or total))
    per_call = getattr(model, '_steps_per_execution', None)
    self.per_call = 1 if per_call is None else int(per_call.numpy())
    hooks = self.make_hooks(run)
    if self.log_dir and self.with_summaries:
      hooks.append(summaries.SummaryHook())
    if self.log_dir:
      hooks.append(summaries.TrainingScalars())
    self.hooks = hooks
    self.step = int(optimizer.iterations.numpy())
    self.ctx = training.RunContext(
        model=model, optimizer=optimizer, run=run,
        step_counter=optimizer.iterations, lr_ratio=self._lr_ratio,
        loss_fn=self._loss_fn(), batch_size=self._batch_size(),
        example_source=self._examples, hooks=hooks, fresh=self.step == 0,
        writer=(summaries.file_writer(self.log_dir)
                if self.log_dir else None))
    for hook in hooks:
      hook.state(self.ctx)
    for hook in hooks:
      hook.begin(self.ctx)
    self._snapshot, self._logs = None, None
    self._epoch_base = self.step
    self.next = self._next_event()

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch_base = self.step

  def on_train_batch_begin(self, batch, logs=None):
    first = self._epoch_base + batch + 1  # the call's steps
    skipped = [t for t in range(first, first + self.per_call)
               if any(h.skips_update(t) for h in self.hooks)]
    if skipped:
      if self.per_call != 1:
        raise ConfigError(
            'steps_per_execution', f'a hook skips the update of step '
            f'{skipped[0]}, which needs one step per call under model.fit; '
            f'steps_per_execution is {self.per_call}')
      opt, variables = self.model.optimizer, self.model.trainable_variables
      slots = [s for v in variables for s in training.optimizer_slots(opt, v)]
      self._snapshot = [(v, v.numpy()) for v in variables + slots]

  def on_train_batch_end(self, batch, logs=None):
    # Keras' index of the call's last batch: right also for a last call of
    # an epoch that Keras shortens.
    self.step = self._epoch_base + batch + 1
    step, ctx = self.step, self.ctx
    if self._snapshot is not None:  # the mask update replaces this step's
      for v, value in self._snapshot:
        v.assign(value)
      self._snapshot = None
    if step >= self.next:
      if step > self.next:
        who = ', '.join(type(h).__name__ for h in self.hooks
                        if h.next_event(step - self.per_call) == self.next)
        raise ConfigError(
            'steps_per_execution', f'an event of {who} is at step '
            f'{self.next}, inside a call of {self.per_call} steps that ended '
            f'at step {step}: use a steps_per_execution that divides the '
            'mask-update interval, the rewind step and summaries every')
      grads = None
      if any(h.wants_gradients(step) for h in self.hooks):
        grads = self._batch_gradients()
      for hook in self.hooks:
        hook.after_step(ctx, step, grads)
      self.next = self._next_event()
    self._logs = logs
    if step % self.log_every == 0:
      self._log()

  def _log(self):
    """The loop's scalars at this step: Keras' running mean loss of the
    epoch and the learning rate."""
    logs = self._logs
    if logs and 'loss' in logs:
      values = dict(loss=float(logs['loss']),
                    learning_rate=self._learning_rate(self.step))
      for hook in self.hooks:
        hook.after_log(self.ctx, self.step, values)

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    if 'val_loss' in logs:
      metrics = dict(step=self.step, val_loss=float(logs['val_loss']),
                     val_accuracy=float(logs.get('val_accuracy', math.nan)))
      for hook in self.hooks:
        hook.after_eval(self.ctx, self.step, metrics)

  def on_train_end(self, logs=None):
    if self.step % self.log_every:
      self._log()  # the last step, as the command line's loop does
    result = dict(steps=self.step, **masks_lib.result_figures(self.model))
    for hook in self.hooks:
      hook.end(self.ctx, result)
    self.result = result
    if self.ctx.writer is not None:
      self.ctx.writer.close()

  # -- helpers ---------------------------------------------------------------
  def _next_event(self):
    return min([h.next_event(self.step) for h in self.hooks] or
               [np.iinfo(np.int64).max])

  def _schedule(self):
    opt = self.model.optimizer
    lr = getattr(opt, '_learning_rate', None)
    return lr if isinstance(
        lr, keras.optimizers.schedules.LearningRateSchedule) else None

  def _learning_rate(self, step):
    schedule = self._schedule()
    if schedule is not None:
      return float(schedule(step))
    return float(keras.backend.get_value(self.model.optimizer.learning_rate))

  def _lr_ratio(self, step):
    schedule = self._schedule()
    base = self.base_learning_rate
    if base is None and schedule is not None:
      base = getattr(schedule, 'initial_learning_rate',
                     getattr(schedule, 'base', None))
      if base is None:
        raise ConfigError('base_learning_rate', 'the learning-rate schedule '
                          f'{type(schedule).__name__} has no initial rate: '
                          'pass base_learning_rate= to the callback')
    if base is None:
      return 1.0  # a constant rate
    return self._learning_rate(step) / float(base)

  def _loss_fn(self):
    loss = self.loss if self.loss is not None else self.model.loss
    if isinstance(loss, (dict, list, tuple)):
      raise ConfigError('loss', 'the model has several losses; pass the '
                        'loss to score on (loss=...) to the callback')
    return keras.losses.get(loss) if loss is not None else None

  def _batch_size(self):
    """The batch size of `data` (its first batch's; 32, Keras' default,
    for arrays), or None without data."""
    data = self.data
    if isinstance(data, tf.data.Dataset):
      spec = tf.nest.flatten(data.element_spec)[0]
      if spec.shape[0] is not None:
        return int(spec.shape[0])
      first = tf.nest.flatten(next(iter(data)))[0]
      return int(first.shape[0])
    return None if data is None else 32

  def _examples(self):
    """(x, y) arrays of `data` (a dataset: its first batches, up to 10,000
    examples), for hooks that score on a fixed batch (read when one first
    asks, `RunContext.examples`); None without data."""
    data = self.data
    if data is None:
      return None
    if isinstance(data, tf.data.Dataset):
      xs, ys, n = [], [], 0
      for x, y in data:
        xs.append(x.numpy())
        ys.append(y.numpy())
        n += len(ys[-1])
        if n >= 10000:
          break
      return np.concatenate(xs), np.concatenate(ys)
    x, y = data
    return np.asarray(x), np.asarray(y)

  def _batch_gradients(self):
    """Dense gradients on the next batch of `data`."""
    if self.data is None:
      raise ConfigError('data', 'this method scores growth on the dense '
                        'gradients of a training batch, which model.fit '
                        'does not show a callback: pass the training data '
                        '(data=dataset or (x, y)) to the callback')
    if self._scoring is None:
      data = self.data
      if not isinstance(data, tf.data.Dataset):
        data = tf.data.Dataset.from_tensor_slices(tuple(data)).shuffle(
            len(data[1]), seed=0).batch(self.ctx.batch_size or 32)
      self._scoring = (iter(data.repeat()),
                       training.BatchGradients(self.model, self.ctx.loss_fn))
    batches, grads = self._scoring
    x, y = next(batches)
    return grads(x, y)


class SparseTraining(HookCallback):
  """Sparse training of a wrapped model in `model.fit`: any registered
  method (`algorithms.METHODS`: 'rigl', 'set', 'static', 'gmp', 'snip')
  with all its settings (`algorithms.SparseTrainingSettings`: sparsity,
  distribution, update_every, begin_step, end_step, drop_fraction, ...,
  block_size). With steps_per_execution = k > 1 the mask updates must end
  calls: update_every a multiple of k and begin_step + 1 too (e.g.
  begin_step = update_every - 1).

  The starting masks are set when training begins (random masks with the
  target sparsities, or all ones for methods that start dense), unless
  the model already has sparse masks and `keep_masks` is True.
  `settings` (a whole `SparseTrainingSettings`) replaces `method`,
  `sparsity` and the keyword settings; `sparse_training.seed`, when set,
  replaces `seed`. `result` (after `fit`) has the figures of a results.csv
  row: density, churn, grown_survival, FLOPs, ... Other keyword arguments
  are `HookCallback`'s.
  """

  def __init__(self, method='rigl', sparsity=0.9, seed=0, gmp=None,
               keep_masks=False, settings=None, steps=None, log_dir=None,
               data=None, loss=None, base_learning_rate=None, log_every=100,
               **sparse_training):
    super().__init__(steps=steps, log_dir=log_dir, data=data, loss=loss,
                     base_learning_rate=base_learning_rate,
                     log_every=log_every)
    self.settings = settings or algorithms.SparseTrainingSettings(
        method=method, sparsity=sparsity, **sparse_training)
    if self.settings.seed is not None:  # sparse_training.seed, as the CLI
      seed = self.settings.seed
    self.seed, self.gmp, self.keep_masks = int(seed), gmp, keep_masks
    self.algorithm = None

  def make_hooks(self, run):
    model, cfg = self.model, self.settings
    self.algorithm = algorithms.make(
        cfg, pruning.target_sparsities(model, cfg), self.seed, run,
        masks_lib.weight_shapes(model), gmp=self.gmp,
        units=masks_lib.unit_readers(model))
    resumed = int(model.optimizer.iterations.numpy()) > 0
    if not (self.keep_masks or resumed):
      pruning.initialize_masks(model, self.algorithm)
    if (self.per_call > 1 and self.algorithm.replaces_step
        and cfg.skip_update_on_mask_steps):
      raise ConfigError(
          'sparse_training.skip_update_on_mask_steps', 'skipping the update '
          'of a mask-update step needs one step per call under model.fit; '
          f'steps_per_execution is {self.per_call} (set '
          'skip_update_on_mask_steps=False or steps_per_execution=1)')
    if self.per_call > 1:
      every = getattr(self.algorithm, 'schedule', None)
      if every is not None and every.every % self.per_call:
        raise ConfigError(
            'sparse_training.update_every', f'{every.every} steps is not a '
            f'multiple of steps_per_execution ({self.per_call}): mask '
            'updates must fall where a call of model.fit ends')
      if every is not None and (every.begin + 1) % self.per_call:
        raise ConfigError(
            'sparse_training.begin_step', f'the first mask update comes '
            f'after step {every.begin + 1}, inside a call of model.fit '
            f'(steps_per_execution is {self.per_call}): set begin_step = '
            f'{every.every - 1} (updates after steps {every.every}, '
            f'{2 * every.every}, ...) or steps_per_execution=1')
    return [training.MaskHook(self.algorithm)] + super().make_hooks(run)


class RewindPoint(HookCallback):
  """Saves the rewind point theta_k at step `step` of `model.fit` (late
  rewinding: `tt.rewind(model, 'rewind_point')` after pruning)."""

  def __init__(self, step, **kwargs):
    super().__init__(summaries=False, **kwargs)
    self.rewind_step = int(step)

  def make_hooks(self, run):
    return [training.RewindPoint(self.rewind_step, setting='step')
            ] + super().make_hooks(run)


class Summaries(HookCallback):
  """The TensorBoard dashboards of a CLI run (sparsity per layer, weight
  histograms, mask views, loss and learning rate) for `model.fit` of a
  wrapped model, into `log_dir`."""

  def __init__(self, log_dir, **kwargs):
    super().__init__(log_dir=log_dir, **kwargs)
