"""`MaskHook`: runs a sparse-training algorithm on the training loop.

At each step the algorithm wants (`Algorithm.wants_update`), in
cross-replica context, the hook hands it the masks, weights and (when it
needs them) the dense gradients of that step's batch as flat numpy arrays,
writes the new masks through `masks.set_masks` (so weights stay weight *
mask) in one compiled call, and starts newly activated connections at
exactly 0 with every optimizer slot (momentum, Adam's m and v, ...)
zeroed at their positions; a connection dropped and regrown in the same
update keeps its weight and slots (the references treat it as never dropped).

Bookkeeping, checkpointed with the trainer (`Hook.state`), so a resumed run
reports exactly what an uninterrupted one does: the start masks, the set of
connections ever grown, the number of updates and of grown connections.
Each update calls `Trainer.mask_updated(step, stats)` with per key:
dropped, grown, regrown, active, churn, drop_fraction; and logs one line.
*Churn* of a layer is the fraction of the connections active at the start
of the run that are no longer active (|start \\ now| / |start|); the total
pools all layers. At the end the result (the results.csv row) gets the
method, churn, 'grown_survival' (the fraction of the connections grown at
any update that are active at the end) and the algorithm's own fields.
"""
import sys

from absl import logging
import numpy as np
import tensorflow as tf

from tf_tickets import flops
from tf_tickets import masks as masks_lib
from tf_tickets.algorithms.base import RunSteps
from tf_tickets.training.config import optimizer_slots
from tf_tickets.keras import batchnorm_layers
from tf_tickets.training.hook import Hook



class _State(tf.Module):
  """Checkpointed state of a `MaskHook`."""

  def __init__(self, masks, track_growth):
    super().__init__(name='sparse_training')
    common = dict(trainable=False,
                  synchronization=tf.VariableSynchronization.ON_WRITE,
                  aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self.start_masks = [tf.Variable(m, **common) for m in masks]
    self.grown = ([tf.Variable(np.zeros_like(m), **common) for m in masks]
                  if track_growth else [])
    # [number of mask updates, connections grown in total]
    self.counters = tf.Variable(np.zeros(2, np.int64), **common)


class MaskHook(Hook):
  """Runs `algorithm` (an `algorithms.Algorithm`) during training."""

  def __init__(self, algorithm):
    self.algorithm = algorithm
    self.method = algorithm.name
    self._state = None
    self._grad_fn = None
    self._writer = None  # ((optimizer, state, jit), their compiled write)

  # -- state ---------------------------------------------------------------
  def state(self, trainer):
    masks = masks_lib.get_masks(trainer.model)
    self.keys = list(masks)
    self._state = _State([masks[k] for k in self.keys],
                         self.algorithm.tracks_growth)
    return self._state

  def begin(self, trainer):
    if self._state is None:
      raise RuntimeError('the sparse-training hook must be given to the '
                         'Trainer that runs it (hooks=[...])')
    self.algorithm.resolve(RunSteps(trainer.schedule.steps,
                                    trainer.data.steps_per_epoch,
                                    trainer.config.steps_multiplier))
    self.batch = self._fixed_batch(trainer)
    self._grad_fn = None  # of this trainer and schedule
    self.entries = masks_lib.entries_of(trainer.model)  # fixed for the run
    fresh = int(trainer.step_var.numpy()) == trainer.start_step
    if fresh and self.algorithm.prunes_at_start:  # e.g. SNIP, before step 1
      self._apply(trainer, 0, None)
    if fresh:  # not a resume
      masks = masks_lib.get_masks(trainer.model)
      for v, k in zip(self._state.start_masks, self.keys):
        v.assign(masks[k])
      for v in self._state.grown:
        v.assign(tf.zeros_like(v))
      self._state.counters.assign([0, 0])
    self.start = {k: v.numpy() > 0
                  for k, v in zip(self.keys, self._state.start_masks)}
    self.ever_grown = {k: v.numpy() > 0
                       for k, v in zip(self.keys, self._state.grown)}
    self.counters = [int(c) for c in self._state.counters.numpy()]

  def _fixed_batch(self, trainer):
    """The fixed scoring batch (grow_batch_size, or one training batch for
    methods that prune at the start), None for the step's own batch."""
    n = self.algorithm.cfg.grow_batch_size
    if n is None and self.algorithm.prunes_at_start:
      n = trainer.data.batch_size
    if n is None:
      return None
    data = trainer.data
    idx = np.random.default_rng([self.algorithm.seed, 0x6B]).permutation(
        len(data.x_train))[:n]
    return data.x_train[idx].astype(np.float32), data.y_train[idx]

  def batch_gradients(self, trainer, x, y):
    """Dense gradients (id(variable) -> array) of the mean training loss on
    the batch (x, y), in training mode, without changing the model: the
    BatchNorm moving statistics the forward pass updates are put back."""
    model = trainer.model
    if self._grad_fn is None:
      variables = model.trainable_variables

      @tf.function
      def fn(x, y):
        with tf.GradientTape() as tape:
          loss = tf.reduce_mean(trainer.loss_fn(y, model(x, training=True)))
        return tape.gradient(loss, variables)

      self._grad_fn = fn
    stats = [v for l in batchnorm_layers(model)
             for v in (l.moving_mean, l.moving_variance)]
    saved = [v.numpy() for v in stats]
    grads = self._grad_fn(tf.constant(x, tf.float32), tf.constant(y, tf.int32))
    for v, value in zip(stats, saved):
      v.assign(value)
    return {id(v): g.numpy()
            for v, g in zip(model.trainable_variables, grads)}

  def next_event(self, step):
    """The next mask-update step, as the algorithm's schedule says."""
    n = self.algorithm.next_update(step)
    return sys.maxsize if n is None else n

  def uses_step_outputs(self):
    return self._uses_gradients() or self._skips_updates()

  def _uses_gradients(self):  # of the update step's own batch
    return self.algorithm.needs_gradients and self.batch is None

  def _skips_updates(self):
    return (self.algorithm.replaces_step
            and self.algorithm.cfg.skip_update_on_mask_steps)

  def wants_gradients(self, step):
    return self._uses_gradients() and self.algorithm.wants_update(step)

  def skips_update(self, step):
    return self._skips_updates() and self.algorithm.wants_update(step)

  # -- updates ---------------------------------------------------------------
  def after_step(self, trainer, step, grads):
    if self.algorithm.wants_update(step):
      applied = self._apply(trainer, step, grads)
      if applied is not None:
        self._record(trainer, step, *applied)

  def _apply(self, trainer, step, grads):
    """Runs the algorithm and writes its masks; (update, masks) or None."""
    algorithm = self.algorithm
    if algorithm.needs_gradients and self.batch is not None:
      grads = self.batch_gradients(trainer, *self.batch)
    entries = self.entries
    masks = {k: wr.masks[i].numpy().reshape(-1) > 0
             for k, (wr, i) in entries.items()}
    weights = {k: wr.prunable_weights[i].numpy().reshape(-1)
               for k, (wr, i) in entries.items()}
    flat_grads = None
    if algorithm.needs_gradients:
      flat_grads = {}
      for k, (wr, i) in entries.items():
        var = wr.prunable_weights[i]
        if grads is None or id(var) not in grads:
          raise RuntimeError(f'{self.method}: no gradient for {k} at step '
                             f'{step}')
        flat_grads[k] = np.asarray(grads[id(var)]).reshape(-1)
    lr_ratio = (trainer.lr.value(step) / trainer.lr.base
                if algorithm.uses_learning_rate else 1.0)
    update = algorithm.update(step, masks, weights, flat_grads, lr_ratio)
    if update is None:
      return None
    if update.masks:
      # Regrown connections count as never dropped: only newly activated
      # ones start at zero, here and in the bookkeeping.
      update.grown = {k: positions & ~masks[k]
                      for k, positions in update.grown.items()}
      masks.update(update.masks)
      self._write(trainer, entries, masks, update.grown)
    return update, masks

  def _write(self, trainer, entries, masks, activated):
    """Writes every mask (`masks.set_masks`: the weights stay weight *
    mask, so a regrown connection keeps its value), zeroes the weights and
    optimizer slots at the `activated` positions and adds them to the
    checkpointed set of grown connections, in one compiled call (traced
    again for another trainer) that gets the masks and the activated
    positions as two flat tensors (fixed shapes, so XLA compiles it
    once)."""
    jit = bool(trainer.jit_compile and trainer.on_device)
    owner = (trainer.optimizer, self._state, jit)  # jit: off after fallback
    if self._writer is None or any(
        a is not b for a, b in zip(self._writer[0], owner)):
      slots = {k: optimizer_slots(trainer.optimizer, wr.prunable_weights[i])
               for k, (wr, i) in entries.items()}
      model = trainer.model
      shapes = {k: wr.masks[i].shape for k, (wr, i) in entries.items()}
      sizes = [shape.num_elements() for shape in shapes.values()]
      grown = dict(zip(self.keys, self._state.grown))

      # XLA when the whole step is compiled (one device): one fused pass
      # over the weights and slots instead of an op per array.
      @tf.function(jit_compile=jit)
      def write(flat_masks, flat_activated):
        split = zip(shapes.items(), tf.split(flat_masks, sizes),
                    tf.split(flat_activated, sizes))
        new, zero = {}, {}
        for (k, shape), m, z in split:
          new[k], zero[k] = tf.reshape(m, shape), tf.reshape(z, shape)
        masks_lib.set_masks(model, new)
        for k, (wr, i) in entries.items():
          for var in [wr.prunable_weights[i]] + slots[k]:
            var.assign(tf.where(zero[k], tf.zeros_like(var), var))
          if k in grown:
            grown[k].assign(tf.maximum(grown[k],
                                       tf.cast(zero[k], grown[k].dtype)))

      self._writer = (owner, write)
    self._writer[1](
        tf.constant(np.concatenate([masks[k].reshape(-1) for k in entries])),
        tf.constant(np.concatenate([
            activated[k].reshape(-1) if k in activated
            else np.zeros(masks[k].size, bool) for k in entries])))

  def _record(self, trainer, step, update, masks):
    """Saves the new state, tells the hooks, logs one line."""
    stats = update.stats
    for k in update.grown:  # the checkpointed copy is kept by `_write`
      self.ever_grown[k] |= update.grown[k].reshape(self.ever_grown[k].shape)
    self.counters[0] += 1
    self.counters[1] += sum(s['grown'] - s.get('regrown', 0)
                            for s in stats.values())  # newly activated
    self._state.counters.assign(self.counters)
    total, per_key = self.churn(masks)
    for k, s in stats.items():
      s['churn'] = per_key[k]
    totals = dict(churn=total)
    if update.drop_fraction is not None:
      totals['drop_fraction'] = update.drop_fraction
    trainer.mask_updated(step, stats, totals)
    logging.info(
        '%s step %d: %s churn %.4f | %s', self.method, step,
        update.label or f'f={update.drop_fraction:.4f}', total, ' '.join(
            f'{k} -{s["dropped"]}/+{s["grown"]} ({s["churn"]:.3f})'
            for k, s in stats.items() if s['dropped'] or s['grown']))

  # -- reporting -------------------------------------------------------------
  def churn(self, masks):
    """(total churn, {key: churn}): the fraction of the start mask's
    connections no longer active."""
    lost = total = 0
    per_key = {}
    for k in self.keys:
      start = self.start[k].reshape(-1)
      n = int(np.count_nonzero(start))
      gone = int(np.count_nonzero(start & ~(masks[k].reshape(-1) > 0)))
      per_key[k] = gone / n if n else 0.0
      lost += gone
      total += n
    return (lost / total if total else 0.0), per_key

  def end(self, trainer, result):
    masks = masks_lib.get_masks(trainer.model)
    total, per_key = self.churn(masks)
    cfg = self.algorithm.cfg
    result.update(
        method=self.method, churn=total, layer_churn=per_key,
        mask_updates=self.counters[0], grown_connections=self.counters[1],
        target_sparsity=cfg.sparsity, distribution=cfg.distribution)
    if self.algorithm.tracks_growth:
      ever = {k: int(np.count_nonzero(self.ever_grown[k])) for k in self.keys}
      alive = {k: int(np.count_nonzero(self.ever_grown[k] & (masks[k] > 0)))
               for k in self.keys}
      total = sum(ever.values())
      result['grown_survival'] = (sum(alive.values()) / total if total
                                  else None)
      result['layer_grown_survival'] = {k: alive[k] / ever[k]
                                        for k in self.keys if ever[k]}
    result.update(self.algorithm.result())
    train = self.algorithm.training_flops(flops.by_key(trainer.model),
                                          flops.by_key(trainer.model, True))
    result.update(flops.report(trainer.model, train))
