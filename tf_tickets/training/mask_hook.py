"""`MaskHook`: runs a sparse-training algorithm on the training loop.

At each step the algorithm wants (`Algorithm.wants_update`), in
cross-replica context, the hook hands it the masks, weights and (when it
needs them) the dense gradients of that step's batch as flat numpy arrays,
writes the new masks through `masks.set_masks` (so weights stay weight *
mask) in one compiled call, and starts newly activated connections at
exactly 0 with every optimizer slot (momentum, Adam's m and v, ...)
zeroed at their positions; a connection dropped and regrown in the same
update keeps its weight and slots (the references treat it as never dropped).

The run's bookkeeping is one immutable `Bookkeeping` (the start masks, the
set of connections ever grown, the number of updates and of grown
connections), replaced after each update and checkpointed with the run
(`Hook.state`), so a resumed run reports exactly what an uninterrupted one
does. Each update tells the other hooks through the run's event bus
(`RunContext.masks_changed(step, stats, totals)`) with per key:
dropped, grown, regrown, active, churn, drop_fraction; and logs one line.
*Churn* of a layer is the fraction of the connections active at the start
of the run that are no longer active (|start \\ now| / |start|); the total
pools all layers. At the end the result (the results.csv row) gets the
method, churn, 'grown_survival' (the fraction of the connections grown at
any update that are active at the end) and the algorithm's own fields.
"""
import dataclasses
import sys

from absl import logging
import numpy as np
import tensorflow as tf

from tf_tickets import flops
from tf_tickets import masks as masks_lib
from tf_tickets.errors import ConfigError
from tf_tickets.training.config import optimizer_slots
from tf_tickets.training.capture import BatchGradients
from tf_tickets.training.hook import Hook



@dataclasses.dataclass(frozen=True)
class Bookkeeping:
  """What a sparse-training run has done so far (flat numpy arrays per
  weight key): the masks at its start, the connections newly activated at
  some update, the number of updates and of connections grown. Immutable:
  `after(update)` is the state after one more update."""
  start: dict
  ever_grown: dict
  updates: int = 0
  grown: int = 0

  @classmethod
  def starting(cls, masks):
    return cls({k: np.asarray(m).reshape(-1) > 0 for k, m in masks.items()},
               {k: np.zeros(np.size(m), bool) for k, m in masks.items()})

  def after(self, update):
    ever = dict(self.ever_grown)
    for k, positions in update.grown.items():
      ever[k] = ever[k] | positions.reshape(-1)
    new = sum(s['grown'] - s.get('regrown', 0)
              for s in update.stats.values())  # newly activated
    return dataclasses.replace(self, ever_grown=ever,
                               updates=self.updates + 1,
                               grown=self.grown + new)

  def churn(self, masks):
    """(total churn, {key: churn}): the fraction of the start mask's
    connections no longer active."""
    lost = total = 0
    per_key = {}
    for k, start in self.start.items():
      n = int(np.count_nonzero(start))
      gone = int(np.count_nonzero(start & ~(masks[k].reshape(-1) > 0)))
      per_key[k] = gone / n if n else 0.0
      lost += gone
      total += n
    return (lost / total if total else 0.0), per_key

  def survival(self, masks):
    """(total, {key: fraction}): of the connections grown at any update,
    the fraction active in `masks` (total None if none was grown)."""
    ever = {k: int(np.count_nonzero(g)) for k, g in self.ever_grown.items()}
    alive = {k: int(np.count_nonzero(g & (masks[k].reshape(-1) > 0)))
             for k, g in self.ever_grown.items()}
    total = sum(ever.values())
    return ((sum(alive.values()) / total if total else None),
            {k: alive[k] / ever[k] for k in ever if ever[k]})


class _Saved(tf.Module):
  """The checkpointed copy of a `Bookkeeping`: float32 0/1 arrays in the
  weights' shapes (the format checkpoints had before `Bookkeeping`, so
  older runs resume)."""

  def __init__(self, masks, track_growth):
    super().__init__(name='sparse_training')
    common = dict(trainable=False,
                  synchronization=tf.VariableSynchronization.ON_WRITE,
                  aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self.keys = list(masks)
    self.start_masks = [tf.Variable(np.asarray(masks[k], np.float32),
                                    **common) for k in self.keys]
    self.grown = [tf.Variable(np.zeros_like(masks[k], np.float32), **common)
                  for k in self.keys] if track_growth else []
    # [number of mask updates, connections grown in total]
    self.counters = tf.Variable(np.zeros(2, np.int64), **common)

  def save(self, book, start=True):
    if start:
      for v, k in zip(self.start_masks, self.keys):
        v.assign(book.start[k].reshape(v.shape).astype(np.float32))
    for v, k in zip(self.grown, self.keys):  # if tracked
      v.assign(book.ever_grown[k].reshape(v.shape).astype(np.float32))
    self.counters.assign([book.updates, book.grown])

  def load(self):
    updates, grown = (int(c) for c in self.counters.numpy())
    return Bookkeeping(
        {k: v.numpy().reshape(-1) > 0
         for k, v in zip(self.keys, self.start_masks)},
        {k: (self.grown[i].numpy().reshape(-1) > 0 if self.grown
             else np.zeros(self.start_masks[i].shape.num_elements(), bool))
         for i, k in enumerate(self.keys)},
        updates, grown)


class MaskHook(Hook):
  """Runs `algorithm` (an `algorithms.Algorithm`) during training."""

  def __init__(self, algorithm):
    self.algorithm = algorithm
    self.method = algorithm.name
    self._saved = None
    self.book = None
    self._grads = None
    self._writer = None  # ((optimizer, jit), their compiled write)

  # -- state ---------------------------------------------------------------
  def state(self, ctx):
    masks = masks_lib.get_masks(ctx.model)
    self._saved = _Saved(masks, self.algorithm.tracks_growth)
    return self._saved

  def begin(self, ctx):
    if self._saved is None:
      raise RuntimeError('the sparse-training hook must be given to the '
                         'run that runs it (hooks=[...])')
    if self.algorithm.run != ctx.run:
      raise ConfigError('sparse_training', f'{self.method} was made for '
                        f'{self.algorithm.run}, the run is {ctx.run}')
    self.batch = self._fixed_batch(ctx)
    self._grads = None  # BatchGradients of this run's model, when needed
    self.entries = masks_lib.entries_of(ctx.model)  # fixed for the run
    if ctx.fresh and self.algorithm.prunes_at_start:  # SNIP, before step 1
      self._apply(ctx, 0, None)
    if ctx.fresh:  # not a resume
      self.book = Bookkeeping.starting(masks_lib.get_masks(ctx.model))
      self._saved.save(self.book)
    else:
      self.book = self._saved.load()

  def _fixed_batch(self, ctx):
    """The fixed scoring batch (grow_batch_size, or one training batch for
    methods that prune at the start), None for the step's own batch."""
    n = self.algorithm.cfg.grow_batch_size
    if n is None and self.algorithm.prunes_at_start:
      n = ctx.batch_size
    if n is None:
      return None
    if ctx.examples is None or n is None:
      raise ConfigError(
          'sparse_training.grow_batch_size', f'{self.method} scores on a '
          'fixed batch of training examples: give the examples (data=...) '
          'and the batch size (grow_batch_size=N)')
    x, y = ctx.examples
    idx = np.random.default_rng([self.algorithm.seed, 0x6B]).permutation(
        len(x))[:n]
    x = np.asarray(x[idx])
    if x.dtype == np.uint8:  # raw pixels: the model takes float32
      x = x.astype(np.float32)
    return x, np.asarray(y[idx])

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
  def after_step(self, ctx, step, grads):
    if self.algorithm.wants_update(step):
      applied = self._apply(ctx, step, grads)
      if applied is not None:
        self._record(ctx, step, *applied)

  def _apply(self, ctx, step, grads):
    """Runs the algorithm and writes its masks; (update, masks) or None."""
    algorithm = self.algorithm
    if algorithm.needs_gradients and self.batch is not None:
      if self._grads is None:
        self._grads = BatchGradients(ctx.model, ctx.loss_fn)
      grads = self._grads(*self.batch)
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
    lr_ratio = ctx.lr_ratio(step) if algorithm.uses_learning_rate else 1.0
    update = algorithm.update(step, masks, weights, flat_grads, lr_ratio)
    if update is None:
      return None
    if update.masks:
      # Regrown connections count as never dropped: only newly activated
      # ones start at zero, here and in the bookkeeping.
      update.grown = {k: positions & ~masks[k]
                      for k, positions in update.grown.items()}
      masks.update(update.masks)
      self._write(ctx, entries, masks, update.grown)
    return update, masks

  def _write(self, ctx, entries, masks, activated):
    """Writes every mask (`masks.set_masks`: the weights stay weight *
    mask, so a regrown connection keeps its value) and zeroes the weights
    and optimizer slots at the `activated` positions, in one compiled call
    (traced again for another optimizer) that gets the masks and the
    activated positions as two flat tensors (fixed shapes, so XLA compiles
    it once)."""
    owner = (ctx.optimizer, ctx.jit)  # jit: off after a fallback
    if self._writer is None or any(
        a is not b for a, b in zip(self._writer[0], owner)):
      slots = {k: optimizer_slots(ctx.optimizer, wr.prunable_weights[i])
               for k, (wr, i) in entries.items()}
      model = ctx.model
      shapes = {k: wr.masks[i].shape for k, (wr, i) in entries.items()}
      sizes = [shape.num_elements() for shape in shapes.values()]

      # XLA when the whole step is compiled (one device): one fused pass
      # over the weights and slots instead of an op per array.
      @tf.function(jit_compile=ctx.jit)
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

      self._writer = (owner, write)
    self._writer[1](
        tf.constant(np.concatenate([masks[k].reshape(-1) for k in entries])),
        tf.constant(np.concatenate([
            activated[k].reshape(-1) if k in activated
            else np.zeros(masks[k].size, bool) for k in entries])))

  def _record(self, ctx, step, update, masks):
    """Saves the new bookkeeping, tells the hooks, logs one line."""
    stats = update.stats
    self.book = self.book.after(update)
    self._saved.save(self.book, start=False)
    total, per_key = self.book.churn(masks)
    for k, s in stats.items():
      s['churn'] = per_key[k]
    totals = dict(churn=total)
    if update.drop_fraction is not None:
      totals['drop_fraction'] = update.drop_fraction
    ctx.masks_changed(step, stats, totals)
    logging.info(
        '%s step %d: %s churn %.4f | %s', self.method, step,
        update.label or f'f={update.drop_fraction:.4f}', total, ' '.join(
            f'{k} -{s["dropped"]}/+{s["grown"]} ({s["churn"]:.3f})'
            for k, s in stats.items() if s['dropped'] or s['grown']))

  # -- reporting -------------------------------------------------------------
  def end(self, ctx, result):
    masks = masks_lib.get_masks(ctx.model)
    total, per_key = self.book.churn(masks)
    cfg = self.algorithm.cfg
    result.update(
        method=self.method, churn=total, layer_churn=per_key,
        mask_updates=self.book.updates, grown_connections=self.book.grown,
        target_sparsity=cfg.sparsity, distribution=cfg.distribution)
    if self.algorithm.tracks_growth:
      result['grown_survival'], result['layer_grown_survival'] = (
          self.book.survival(masks))
    result.update(self.algorithm.result())
    train = self.algorithm.training_flops(flops.by_key(ctx.model),
                                          flops.by_key(ctx.model, True))
    result.update(flops.report(ctx.model, train))
