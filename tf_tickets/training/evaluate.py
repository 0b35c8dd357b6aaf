"""`Evaluator`: (loss, accuracy) of a model on a split, compiled once per
split. The loop evaluates through it, and so does anything that only
evaluates (the stability analysis along its interpolation path): no
Trainer, optimizer or device copy of the training set is built for that.

On one device the split is held on the device and evaluated in one
compiled call (a loop over batches of `data.EVAL_BATCH`, the remainder
apart, so every shape is static for XLA); with several replicas, a
distributed dataset with one call per batch.
"""
import numpy as np
import tensorflow as tf

from tf_tickets import data as data_lib
from tf_tickets.keras import keras
from tf_tickets.training.compiled import single_device


def loss_function():
  """The per-example loss of training and evaluation (logits in)."""
  return keras.losses.SparseCategoricalCrossentropy(
      from_logits=True, reduction=keras.losses.Reduction.NONE)


class Evaluator:
  """`evaluator(split)` -> (loss, accuracy) on 'val' or 'test' of `data`."""

  def __init__(self, model, data, strategy, jit_compile=False):
    self.model, self.data, self.strategy = model, data, strategy
    self.jit_compile = jit_compile
    self.on_device = single_device(strategy)
    self.loss_fn = loss_function()
    self._fns = {}

  def __call__(self, split):
    x, y = ((self.data.x_val, self.data.y_val) if split == 'val'
            else (self.data.x_test, self.data.y_test))
    if len(x) == 0:
      return float('nan'), float('nan')
    if split not in self._fns:
      self._fns[split] = self._fn(x, y)
    total = np.asarray(self._fns[split]())
    return total[0] / total[2], total[1] / total[2]

  def _sums(self, x, y):
    """(summed loss, correct, count) of one batch, per replica."""
    logits = self.model(x, training=False)
    loss = tf.reduce_sum(self.loss_fn(y, logits))
    correct = tf.reduce_sum(tf.cast(
        tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                 tf.cast(y, tf.int32)), tf.float32))
    count = tf.cast(tf.shape(y)[0], tf.float32)
    return tf.cast(tf.stack([loss, correct, count]), tf.float64)

  def _fn(self, x, y):
    """The evaluation of a split: `fn()` -> summed (loss, correct, count)."""
    if self.on_device:
      with self.strategy.scope():
        xs = tf.Variable(x, trainable=False)
        ys = tf.Variable(np.asarray(y).astype(np.int32), trainable=False)
      full = len(x) // data_lib.EVAL_BATCH

      def batch(index):
        return (tf.cast(tf.gather(xs, index), tf.float32),
                tf.gather(ys, index))

      def run():
        total = tf.zeros([3], tf.float64)
        for i in tf.range(full, dtype=tf.int64):
          # A gather, not a slice: XLA would take the start as a constant.
          total += self._sums(*batch(
              i * data_lib.EVAL_BATCH + tf.range(data_lib.EVAL_BATCH,
                                                 dtype=tf.int64)))
        if full * data_lib.EVAL_BATCH < len(x):
          total += self._sums(*batch(tf.range(
              full * data_lib.EVAL_BATCH, len(x), dtype=tf.int64)))
        return total

      return tf.function(run, jit_compile=self.jit_compile)
    ds = self.strategy.experimental_distribute_dataset(
        data_lib.eval_dataset(x, y, data_lib.EVAL_BATCH))

    @tf.function
    def eval_batch(x_batch, y_batch):
      out = self.strategy.run(self._sums, args=(x_batch, y_batch))
      return self.strategy.reduce(tf.distribute.ReduceOp.SUM, out, axis=None)

    def run():
      return sum((eval_batch(a, b).numpy() for a, b in ds), np.zeros(3))
    return run
