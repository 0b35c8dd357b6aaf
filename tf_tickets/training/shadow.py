"""A checkpointed copy of a network's state (the early-stopping state)."""
import tensorflow as tf

from tf_tickets import wrapper as wrapper_lib


def state_variables(model):
  """The variables that make up the network's state (weights, masks,
  normalisation statistics), without theta_0 and rewind-point copies."""
  skip = wrapper_lib.bookkeeping(model)
  for wr in wrapper_lib.wrappers(model):
    masks = {id(m) for m in wr.masks}
    skip -= masks
  return [v for v in model.weights if id(v) not in skip]


class Shadow(tf.Module):
  """A checkpointed copy of some variables (the early-stopping state)."""

  def __init__(self, variables):
    super().__init__(name='best_state')
    self._sources = variables
    self.copies = [tf.Variable(v.read_value(), trainable=False,
                               synchronization=tf.VariableSynchronization.ON_WRITE,
                               aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
                   for v in variables]

  def copy_from(self):
    for c, v in zip(self.copies, self._sources):
      c.assign(v.read_value())

  def swap_in(self):
    """Sets the sources to the copies; returns their current values."""
    current = [v.numpy() for v in self._sources]
    for c, v in zip(self.copies, self._sources):
      v.assign(c.read_value())
    return current

  def restore(self, values):
    for v, value in zip(self._sources, values):
      v.assign(value)
