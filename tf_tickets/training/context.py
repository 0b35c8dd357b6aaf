"""`RunContext`: what a `Hook` sees of the run it is part of.

The training loop (`Trainer`) and the Keras callback adapter
(`tf_tickets.callbacks`) each build one and pass it to every hook call,
so a hook (sparse training, rewind capture, summaries) runs the same under
both. It is deliberately small:

  model          the wrapped model being trained
  optimizer      its optimizer (a mask update zeroes grown weights' slots)
  run            `algorithms.RunSteps`: total steps, steps per epoch, the
                 steps multiplier (what step settings resolve against)
  step           the number of completed steps (read from the loop's
                 step counter)
  fresh          True if training starts afresh, False on resume
                 (valid from `Hook.begin` on)
  lr_ratio(t)    learning rate at step t / the base rate
  loss_fn        per-example loss(labels, logits)
  batch_size     the global training batch size
  examples       (x, y) arrays of the training set, or None (a hook that
                 scores on a fixed batch draws it from them); built on
                 first use from `example_source` (the arrays, or a function
                 returning them)
  writer         this network's TensorBoard writer, or None
  jit            True if a hook's compiled writes may use XLA
  masks_changed  the event bus: a hook that changed masks calls
                 `ctx.masks_changed(step, stats, totals)`, and every hook's
                 `on_mask_update(ctx, step, stats, totals)` hears it
"""
import dataclasses


@dataclasses.dataclass
class RunContext:
  """See the module docstring."""
  model: object
  optimizer: object
  run: object  # algorithms.RunSteps
  step_counter: object  # a variable or callable: the completed steps
  lr_ratio: object  # step -> lr(step) / base rate
  loss_fn: object
  batch_size: int
  example_source: object = None  # (x, y), or a function returning them
  writer: object = None
  jit: bool = False
  hooks: list = dataclasses.field(default_factory=list)
  fresh: bool = True

  @property
  def examples(self):
    if callable(self.example_source):
      self.example_source = self.example_source()
    return self.example_source

  @property
  def step(self):
    counter = self.step_counter
    return int(counter() if callable(counter) else counter.numpy())

  def masks_changed(self, step, stats, totals=None):
    """Tells every hook that masks changed at `step` (stats: per-weight key
    -> figures such as dropped/grown counts; totals: figures of the whole
    update)."""
    for hook in self.hooks:
      hook.on_mask_update(self, step, stats, totals)
