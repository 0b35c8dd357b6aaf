"""The one training loop: `Trainer`, its `Hook`s, checkpoints, resume.

`train_network` trains one network (a dense model, one lottery level, one
sparse-training run) in its own directory:

    NET_DIR/checkpoints/   in-progress checkpoints (model, optimizer, step,
                           early-stopping tracker); a killed run resumes here
    NET_DIR/final/         trained weights (completion marker, written last
                           and atomically)
    NET_DIR/result.json    the network's figures (one results.csv row)

Algorithms plug in through hooks (`Hook`): late-rewinding capture, RigL/SET
mask updates, gradual pruning and summaries all run at step boundaries in
cross-replica context, so every replica sees the same masks.

The loop keeps the wrapper's invariant: every Keras optimizer applies the
wrappers' mask constraint after each update, and hooks that change masks go
through `TicketWrapper.set_masks`.
"""

import math
import os
import time

from absl import logging
import numpy as np
import tensorflow as tf

from tf_tickets import masks as masks_lib
from tf_tickets import rundir
from tf_tickets.errors import TicketsError
from tf_tickets.errors import first_line
from tf_tickets.training.cluster import Workers
from tf_tickets.training.compiled import CompiledSteps
from tf_tickets.training.config import make_optimizer
from tf_tickets.training.config import resolve_schedule
from tf_tickets.training.config import run_steps
from tf_tickets.training.config import use_xla
from tf_tickets.training.context import RunContext
from tf_tickets.training.evaluate import Evaluator
from tf_tickets.training.evaluate import loss_function
from tf_tickets.training.progress import Progress
from tf_tickets.training.shadow import Shadow
from tf_tickets.training.shadow import state_variables

# ------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------


class Trainer:
  """Trains a wrapped model with one compiled step, hooks and checkpoints."""

  def __init__(self, model, data, config, strategy, net_dir, hooks=(),
               writer=None, quiet=False, learning_rate=None, start_step=0,
               stop_step=None):
    self.model, self.data, self.config = model, data, config
    self.strategy, self.net_dir = strategy, net_dir
    self.hooks, self.writer, self.quiet = list(hooks), writer, quiet
    jit_compile = use_xla(config.jit_compile, model)
    self.schedule = resolve_schedule(config, data.steps_per_epoch)
    if learning_rate is not None:
      config = config.replace(learning_rate=learning_rate)
      self.config = config
    with strategy.scope():
      self.start_step = self.current_step = int(start_step)
      # Train up to `stop_step` on the schedule of `schedule.steps` (a
      # trajectory prefix, e.g. the parent run of the stability analysis).
      self.stop_step = self.schedule.steps if stop_step is None else int(
          stop_step)
      if not 0 <= self.start_step < self.schedule.steps:
        raise TicketsError(f'start step {self.start_step} is not before the '
                           f'end of training ({self.schedule.steps} steps)')
      self.optimizer, self.lr = make_optimizer(config, self.schedule,
                                               self.start_step)
      self.optimizer.build(model.trainable_variables)
      self.step_var = tf.Variable(self.start_step, dtype=tf.int64,
                                  trainable=False)
      self.wall_var = tf.Variable(0.0, dtype=tf.float64, trainable=False)
      # Early stopping (the LTH paper's figures): the minimum validation
      # loss, its step, and the network state there (`best_state`), where
      # the test set is evaluated once at the end.
      self.best = tf.Variable([np.inf, -1.0], dtype=tf.float64,
                              trainable=False)
      self.best_state = Shadow(state_variables(model))
      self.steps = CompiledSteps(model, data, config, strategy,
                                 self.optimizer, loss_function(), jit_compile)
      self.context = RunContext(
          model=model, optimizer=self.optimizer,
          run=run_steps(config, data.steps_per_epoch),
          step_counter=lambda: self.current_step, lr_ratio=self.lr.ratio,
          loss_fn=self.steps.loss_fn, batch_size=data.batch_size,
          example_source=(data.x_train, data.y_train),
          jit=bool(jit_compile and self.steps.on_device), hooks=self.hooks)
      hook_state = {f'hook_{i}': s for i, s in
                    enumerate(h.state(self.context) for h in self.hooks)
                    if s is not None}
    self.checkpoint = tf.train.Checkpoint(
        model=model, optimizer=self.optimizer, step=self.step_var,
        wall=self.wall_var, best=self.best, best_state=self.best_state,
        **hook_state)
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, rundir.checkpoints_dir(net_dir), max_to_keep=2)
    self.evaluate = Evaluator(model, data, strategy, jit_compile)
    self.history = []
    self.workers = Workers.of(strategy)
    self._saved_at = time.monotonic()

  # -- the loop ----------------------------------------------------------------
  def restore(self):
    """Restores the newest checkpoint that reads; returns the step it holds
    (the start step if there is none). A damaged checkpoint (truncated,
    corrupt) is set aside with a warning and the previous one is tried; if
    none reads, TicketsError names the newest."""
    found = rundir.checkpoint_prefixes(self.net_dir)
    for prefix in found:
      try:
        self.checkpoint.read(prefix).assert_existing_objects_matched()
      except Exception as e:  # pylint: disable=broad-except
        # Truncated files raise IndexError, corrupt ones OpError/ValueError,
        # another configuration AssertionError.
        logging.warning('checkpoint %s cannot be restored (%s: %s); trying '
                        'the previous one', prefix, type(e).__name__,
                        first_line(e))
        continue
      if prefix != found[0]:
        rundir.set_aside_checkpoints(self.net_dir, newer_than=prefix)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, rundir.checkpoints_dir(self.net_dir),
            max_to_keep=2)
      return int(self.step_var.numpy())
    if found:
      raise TicketsError(
          f'checkpoint {found[0]} cannot be restored and no earlier one '
          'reads: the files are damaged, from a different configuration, or '
          'from a tf_tickets version before whole-network rewinding. Move '
          f'{rundir.checkpoints_dir(self.net_dir)} away to restart this '
          'network, or use another --output_dir')
    return self.start_step

  def save_checkpoint(self, step):
    self.step_var.assign(step)
    self.manager.save(checkpoint_number=step)
    self._saved_at = time.monotonic()

  def _checkpoint_due(self, step):
    """Whether to checkpoint at this call boundary: every
    `checkpoint_every` steps, or once `checkpoint_seconds` have passed
    since the last save (never at the end: final/ holds the network). With
    several workers they decide together (one tiny collective per call),
    so that every worker holds checkpoints of the same steps."""
    sched = self.schedule
    if sched.checkpoint_seconds is None:
      return step % sched.checkpoint_every == 0
    if step >= self.stop_step:
      return False
    due = time.monotonic() - self._saved_at >= sched.checkpoint_seconds
    if self.workers.several:
      due = max(self.workers.gather(int(due))) > 0
    return due

  def fit(self):
    """Trains to `schedule.steps` (resuming if possible) and evaluates."""
    start = self.current_step = self.restore()
    if callable(self.writer):  # created only once the checkpoint is good
      self.writer = self.writer()
    ctx = self.context
    ctx.writer, ctx.fresh = self.writer, start == self.start_step
    if start > self.start_step:
      logging.info('%s: resuming at step %d of %d', self.net_dir, start,
                   self.schedule.steps)
    for hook in self.hooks:
      hook.begin(ctx)
    self.steps.step_outputs = any(h.uses_step_outputs() for h in self.hooks)
    progress = None if self.quiet else Progress(
        os.path.join(*os.path.normpath(self.net_dir).split(os.sep)[-2:]),
        start, self.stop_step)
    try:
      step = self._loop(start, progress)
    finally:
      if progress is not None:
        progress.close()
    result = self._result(step)
    if progress is not None:
      progress.done(step, density=result['density'],
                    test_acc=result['test_accuracy'])
    return result

  def _loop(self, start, progress):
    """Steps `start`..`stop_step` with hooks, evaluations and checkpoints;
    returns the last step."""
    sched = self.schedule
    variables = self.model.trainable_variables
    steps = self.steps
    iterator = steps.iterator(start)
    t0, wall0 = time.time(), float(self.wall_var.numpy())
    self._saved_at = time.monotonic()  # the run's wall-time interval starts
    step, shown = start, {}
    if start == self.start_step:
      metrics = self._evaluate_and_track(start)
      if progress is not None:
        progress.update(start, val_loss=metrics['val_loss'],
                        val_acc=metrics['val_accuracy'])
    while step < self.stop_step:
      nxt = self._next_stop(step)
      want = any(h.wants_gradients(nxt) for h in self.hooks)
      skip = any(h.skips_update(nxt) for h in self.hooks)
      try:
        out = steps.run_to(iterator, step, nxt, want, skip)
      except (tf.errors.InvalidArgumentError,
              tf.errors.UnimplementedError) as e:
        if not steps.jit_compile or 'XLA' not in str(e) + type(e).__name__:
          raise
        # Compilation fails at the first call, before any update: retry
        # the same steps uncompiled, from the same batch.
        logging.warning('XLA cannot compile the training step (%s); '
                        'training without it (training.jit_compile = '
                        'False)', first_line(e))
        steps.without_xla()
        self.context.jit = False
        iterator = steps.iterator(step)
        out = steps.run_to(iterator, step, nxt, want, skip)
      grads = {id(v): g for v, g in zip(variables, out)} if want else None
      step = self.current_step = nxt
      for hook in self.hooks:
        hook.after_step(self.context, step, grads)
      if step % self.config.log_every == 0 or step == self.stop_step:
        loss = steps.read_loss()
        values = dict(loss=loss, learning_rate=float(
            self.lr(self.optimizer.iterations)))
        for hook in self.hooks:
          hook.after_log(self.context, step, values)
        shown['loss'] = loss
      if step % sched.eval_every == 0 or step == self.stop_step:
        metrics = self._evaluate_and_track(step)
        shown.update(val_loss=metrics['val_loss'],
                     val_acc=metrics['val_accuracy'])
      if shown and progress is not None:
        progress.update(step, **shown)
        shown = {}
      if self._checkpoint_due(step):
        self.wall_var.assign(wall0 + time.time() - t0)
        self.save_checkpoint(step)
    self.wall_var.assign(wall0 + time.time() - t0)
    return step

  def _next_stop(self, step):
    """The next step the host must see: a hook event, a log, evaluation or
    checkpoint step, the end, or `steps_per_loop` steps on."""
    sched, every = self.schedule, self.config.log_every
    stops = [self.stop_step, step + self.config.steps_per_loop]
    stops += [(step // n + 1) * n for n in (every, sched.eval_every,
                                            sched.checkpoint_every) if n]
    stops += [h.next_event(step) for h in self.hooks]
    if self.steps.device_data:
      stops.append(self.steps.epoch_end(step))
    return max(step + 1, min(stops))

  def _evaluate_and_track(self, step):
    """Validation loss and accuracy at `step`; keeps the best state."""
    val_loss, val_acc = self.evaluate('val')
    metrics = dict(step=step, val_loss=val_loss, val_accuracy=val_acc)
    if not math.isnan(val_loss) and val_loss < self.best.numpy()[0]:
      self.best.assign([val_loss, step])
      self.best_state.copy_from()
    self.history.append(metrics)
    logging.debug('step %d: val_loss %.4f val_acc %.4f', step, val_loss,
                  val_acc)
    for hook in self.hooks:
      hook.after_eval(self.context, step, metrics)
    return metrics

  def _early_stop_test_accuracy(self, step, final_accuracy):
    """Test accuracy of the state at the minimum validation loss."""
    best_step = int(self.best.numpy()[1])
    if best_step < 0:
      return None
    if best_step == step:
      return final_accuracy
    current = self.best_state.swap_in()
    try:
      return self.evaluate('test')[1]
    finally:
      self.best_state.restore(current)

  def _result(self, step):
    final = self.history[-1] if self.history and self.history[-1]['step'] == step \
        else self._evaluate_and_track(step)
    test_loss, test_acc = self.evaluate('test')
    early_test = self._early_stop_test_accuracy(step, test_acc)
    best = self.best.numpy()
    result = dict(
        steps=step, test_accuracy=test_acc, test_loss=test_loss,
        val_accuracy=final['val_accuracy'], val_loss=final['val_loss'],
        early_stop_step=int(best[1]) if best[1] >= 0 else None,
        early_stop_val_loss=float(best[0]) if best[1] >= 0 else None,
        early_stop_test_accuracy=early_test,
        wall_time=float(self.wall_var.numpy()),
        **masks_lib.result_figures(self.model))
    for hook in self.hooks:
      hook.end(self.context, result)
    return result
