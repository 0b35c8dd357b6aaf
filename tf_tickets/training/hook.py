"""`Hook`: how algorithms and observers plug into the training loop."""


class Hook:
  """Called by the loop at step boundaries, in cross-replica context.

  `step` is the number of completed training steps. Hooks must be
  deterministic functions of the step and the model state, so a resumed run
  repeats what an uninterrupted one does.
  """

  def state(self, trainer):
    """Trackable state of the hook (e.g. a tf.Module of variables) that a
    resumed run needs, or None. Called once when the trainer is built, in
    the strategy scope; it is saved in every checkpoint and restored before
    `begin`."""
    del trainer
    return None

  def begin(self, trainer):
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

  def after_step(self, trainer, step, grads):
    """After step `step`: at every event step (`next_event`) and possibly
    at other steps. `grads` (dict id(variable) -> all-reduced
    gradient of the loss for the batch of this step, taken at the weights
    before the update; dense for prunable weights, since the forward pass
    reads the stored masked weights) if `wants_gradients(step)`, else None."""

  def on_mask_update(self, trainer, step, stats, totals=None):
    """After a hook changed masks at `step` (see `Trainer.mask_updated`):
    `stats` per weight key, `totals` of the whole update (e.g. churn)."""

  def after_log(self, trainer, step, values):
    """At every `training.log_every` step and at the end: `values` has
    loss (the mean training loss since the last log) and learning_rate."""

  def after_eval(self, trainer, step, metrics):
    """After each validation; `metrics` has step, val_loss, val_accuracy
    (the test set is evaluated once, at the end: see `Trainer._result`)."""

  def end(self, trainer, result):
    """After training; may add fields to `result` (the results.csv row)."""
