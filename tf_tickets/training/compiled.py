"""What runs on the device: `CompiledSteps`, the compiled loop of training
steps (on one device its last step also returns the dense gradients a mask
update needs) and the compiled step of several replicas. The `Trainer`
owns one and asks it to run steps `step+1..nxt` (`run_to`); evaluation is
`Evaluator`'s.

XLA (`training.jit_compile`): on one replica the whole step (forward,
backward, masked optimizer update) is compiled; with several replicas only
the forward and backward pass, since the update's cross-replica
aggregation cannot be compiled into the replica function.
"""
import tensorflow as tf

from tf_tickets import data as data_lib
from tf_tickets import wrapper as wrapper_lib


def single_device(strategy):
  """True for the default and the one-device strategies: the whole loop,
  batches included, can be compiled (no cross-replica aggregation)."""
  return isinstance(strategy, tf.distribute.OneDeviceStrategy) or (
      type(strategy).__name__ == '_DefaultDistributionStrategy')


class CompiledSteps:
  """The training steps of one run, compiled (see the module docstring).

  It owns the mean-loss accumulators (`read_loss`) and, on one device, the
  training set on the device (`data.DeviceBatches`). `built` lists the
  compiled functions made so far: ('loop', with_last_step_outputs) and
  ('step', with_grads, apply).
  """

  def __init__(self, model, data, config, strategy, optimizer, loss_fn,
               jit_compile):
    self.model, self.data, self.config = model, data, config
    self.strategy, self.optimizer, self.loss_fn = strategy, optimizer, loss_fn
    self.jit_compile = jit_compile
    self.on_device = single_device(strategy)
    # The whole loop compiled with the training set on the device: one
    # device and a training set in memory (a streamed one comes through
    # the dataset's iterator, as with several replicas).
    self.device_data = self.on_device and data.train_stream is None
    self.batches = (data_lib.DeviceBatches(data, config.seed)
                    if self.device_data else None)
    self.step_outputs = False  # set by the loop: see `run_to`
    with strategy.scope():
      self.loss_sum = tf.Variable(0.0, trainable=False,
                                  aggregation=tf.VariableAggregation.SUM)
      self.loss_count = tf.Variable(0.0, trainable=False,
                                    aggregation=tf.VariableAggregation.SUM)
    self._fns = {}

  @property
  def built(self):
    return list(self._fns)

  def without_xla(self):
    """Drops XLA (its compilation failed): later calls run uncompiled."""
    self.jit_compile = False
    self._fns.clear()

  def read_loss(self):
    """The mean training loss since the last call (then reset)."""
    count = float(self.loss_count.numpy())
    loss = float(self.loss_sum.numpy()) / max(count, 1.0)
    self.loss_sum.assign(0.0)
    self.loss_count.assign(0.0)
    return loss

  def _loss(self, x, y, training):
    logits = self.model(x, training=training)
    per_example = self.loss_fn(y, logits)
    loss = tf.nn.compute_average_loss(
        per_example, global_batch_size=self.data.batch_size)
    return logits, loss

  def _regularization(self):
    terms = list(self.model.losses)
    if self.config.weight_decay > 0 and self.config.optimizer != 'adamw':
      terms.append(0.5 * self.config.weight_decay * tf.add_n(
          [tf.reduce_sum(tf.square(v)) for v in self.model.trainable_variables]))
    if not terms:
      return 0.0
    return tf.nn.scale_regularization_loss(tf.add_n(terms))

  def gradients(self, x, y):
    """Per-replica gradients of the training loss (replica context)."""
    variables = self.model.trainable_variables
    with tf.GradientTape() as tape:
      _, loss = self._loss(x, y, training=True)
      total = loss + self._regularization()
    return loss, tape.gradient(total, variables)

  def _train_step(self, with_grads, apply=True):
    """The compiled step (several replicas; on one device the loop runs
    it, `_train_steps`): gradients of one batch, masked for the optimizer
    (pruned entries get 0, so optimizer state never builds up there), and
    returned dense (all-reduced) if `with_grads` (for growth scores);
    `apply=False` skips the optimizer update (the step's iteration is still
    counted, so the learning-rate schedule stays on the global step)."""
    key = ('step', with_grads, apply)
    if key not in self._fns:
      self._fns[key] = self._build_train_step(with_grads, apply)
    return self._fns[key]

  def _replica_step(self, with_grads, apply):
    """One step on one replica: forward, backward, masked update."""
    variables = self.model.trainable_variables
    masks = {}
    for wr in wrapper_lib.wrappers(self.model):
      for w, m in zip(wr.prunable_weights, wr.masks):
        masks[id(w)] = m
    grad_masks = [masks.get(id(v)) for v in variables]

    # With several replicas only the forward and backward pass is compiled
    # (the update's cross-replica aggregation cannot be compiled into the
    # replica function); on one device the caller compiles everything.
    gradients = (tf.function(self.gradients, jit_compile=True)
                 if self.jit_compile and not self.device_data
                 else self.gradients)

    def update(grads):
      self.optimizer.apply_gradients(
          zip([g if m is None else g * tf.cast(m, g.dtype)
               for g, m in zip(grads, grad_masks)], variables),
          # One device: nothing to aggregate (and an all-reduce cannot
          # run in a branch of `tf.cond`).
          experimental_aggregate_gradients=not self.on_device)

    def skip():  # no update; the step still counts
      self.optimizer.iterations.assign_add(1)

    def step_fn(x, y, decide=None):
      """`decide`: None (update if `apply`) or a boolean tensor (update
      or skip, decided on the device)."""
      loss, grads = gradients(x, y)
      if decide is not None:
        tf.cond(decide, lambda: update(grads), skip)
      elif apply:
        update(grads)
      self.loss_sum.assign_add(loss)
      self.loss_count.assign_add(
          tf.constant(1.0 / self.strategy.num_replicas_in_sync))
      return grads if with_grads else None

    return step_fn

  def _build_train_step(self, with_grads, apply):
    step_fn = self._replica_step(with_grads, apply)

    @tf.function
    def train_step(iterator):
      x, y = next(iterator)
      out = self.strategy.run(step_fn, args=(x, y))
      if not apply:
        self.optimizer.iterations.assign_add(1)
      if with_grads:
        return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None)
                for g in out]
      return None

    return train_step

  def _train_steps(self, last=False):
    """The compiled loop of steps `start`..`start + n - 1`. On one device
    the loop itself is compiled, and with `last` its last step returns
    its dense gradients and updates the weights only if `apply_last` (a
    boolean tensor): one call per chunk, update steps included. With
    several replicas, plain steps only (no gradients returned)."""
    key = ('loop', last)
    if key not in self._fns:
      if self.device_data:
        step_fn = self._replica_step(last, True)

        def device_steps(_, start, n, apply_last=None):
          # A while loop, not `tf.range`: XLA takes a range's bounds as
          # compile-time constants and would recompile for every `n`.
          s, end = start, start + n - (1 if last else 0)
          while s < end:
            step_fn(*self.batches.batch(s))
            s += 1
          if last:
            return step_fn(*self.batches.batch(end), decide=apply_last)
          return None
        fn = tf.function(device_steps, jit_compile=self.jit_compile)
      else:
        step_fn = self._replica_step(False, True)

        @tf.function
        def fn(iterator, start, n):
          del start
          for _ in tf.range(n):
            x, y = next(iterator)
            self.strategy.run(step_fn, args=(x, y))

      self._fns[key] = fn
    return self._fns[key]

  def iterator(self, step):
    """The training batches from global step `step` on: the distributed
    dataset's iterator, or None with the data on the device
    (`self.batches`)."""
    if self.device_data:
      return None
    ds = data_lib.train_dataset(self.data, self.config.seed, start_step=step)
    return iter(self.strategy.experimental_distribute_dataset(ds))

  def run_to(self, iterator, step, nxt, want, skip):
    """Steps step+1..nxt; returns the dense gradients of step nxt if
    `want`, and skips its update if `skip`.

    On one device that is one compiled call, whose chunk lies in one epoch
    (see `epoch_end`). If a hook of the run can want gradients or skip an
    update (`step_outputs`, set by the loop), every chunk runs through the
    loop whose last step returns them, so a run compiles one loop and a
    resumed run the same one. With several replicas, the plain steps in
    one call and the last one apart if it is needed."""
    start = tf.constant(step, tf.int64)
    if self.device_data:
      self.batches.prepare(step)
      n = tf.constant(nxt - step, tf.int64)
      if want or skip or self.step_outputs:
        grads = self._train_steps(last=True)(iterator, start, n,
                                             tf.constant(not skip))
        return grads if want else None
      self._train_steps()(iterator, start, n)
      return None
    plain = nxt - step - (1 if want or skip else 0)
    if plain:
      self._train_steps()(iterator, start, tf.constant(plain, tf.int64))
    if want or skip:
      return self._train_step(want, apply=not skip)(iterator)
    return None

  def epoch_end(self, step):
    """On one device, the last step of `step`'s epoch (a chunk of the
    compiled loop stays in one epoch); else None."""
    if not self.device_data:
      return None
    spe = self.batches.steps_per_epoch
    return (step // spe + 1) * spe
