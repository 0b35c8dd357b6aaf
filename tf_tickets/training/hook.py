"""`Hook`: how algorithms and observers plug into the training loop.

Every call gets the run's `RunContext` (`training.context`): the model,
optimizer, steps, writer and the "masks changed" event bus; never the
loop itself, so the same hook runs under the `Trainer` and under
`model.fit` (`tf_tickets.callbacks`)."""


class Hook:
  """Called by the loop at step boundaries, in cross-replica context.

  `step` is the number of completed training steps. Hooks must be
  deterministic functions of the step and the model state, so a resumed run
  repeats what an uninterrupted one does.
  """

  def state(self, ctx):
    """Trackable state of the hook (e.g. a tf.Module of variables) that a
    resumed run needs, or None. Called once when the run is built, in
    the strategy scope; it is saved in every checkpoint and restored before
    `begin`."""
    del ctx
    return None

  def begin(self, ctx):
    """Before the first step (also after a resume)."""

  def next_event(self, step):
    """The first step after `step` at which this hook needs `after_step`
    (and may want gradients or skip the update). The loop runs the steps in
    between as one compiled call (`training.steps_per_loop`) and calls
    `after_step` at least at every event; the default, `step + 1`, asks
    for every step."""
    return step + 1

  def uses_step_outputs(self):
    """True if `wants_gradients` or `skips_update` can be True at some
    step of this run (asked once, after `begin`; a function of the
    settings, not of the step a run resumes at). On one device every chunk
    then runs through the compiled loop whose last step returns its
    gradients and can skip its update, so a resumed run runs the same
    compiled function as an uninterrupted one."""
    return False

  def wants_gradients(self, step):
    """True if `after_step(step)` needs the gradients of that step (only at
    an event step, see `next_event`)."""
    del step
    return False

  def skips_update(self, step):
    """True if step `step` must not update the weights (the batch's
    gradients are still computed; RigL's mask update replaces the step)."""
    del step
    return False

  def after_step(self, ctx, step, grads):
    """After step `step`: at every event step (`next_event`) and possibly
    at other steps. `grads` (dict id(variable) -> all-reduced
    gradient of the loss for the batch of this step, taken at the weights
    before the update; dense for prunable weights, since the forward pass
    reads the stored masked weights) if `wants_gradients(step)`, else None."""

  def on_mask_update(self, ctx, step, stats, totals=None):
    """After a hook changed masks at `step` (`ctx.masks_changed`):
    `stats` per weight key, `totals` of the whole update (e.g. churn)."""

  def after_log(self, ctx, step, values):
    """At every `training.log_every` step and at the end: `values` has
    loss (the mean training loss since the last log) and learning_rate."""

  def after_eval(self, ctx, step, metrics):
    """After each validation; `metrics` has step, val_loss, val_accuracy
    (the test set is evaluated once, at the end)."""

  def end(self, ctx, result):
    """After training; may add fields to `result` (the results.csv row)."""
