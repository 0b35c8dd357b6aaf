"""Input pipelines of a `data.Data`: training batches deterministic by
step (`train_dataset`, and `DeviceBatches`, their on-device twin), finite
evaluation batches and calibration images.

The training batch of global step `s` depends only on (seed, s), so
training resumes at any step without saving iterator state: for data in
memory through a stateless permutation per epoch; for a streamed training
set (`Data.train_stream`) through a seeded shuffle buffer per epoch,
entered at the step's position in its epoch.
"""
import numpy as np

from tf_tickets.keras import keras  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF is imported)
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-order

from tf_tickets.errors import ConfigError, check_int

_PAD = 4  # Random-crop padding (pixels) of the CIFAR augmentation.
_MAX_EPOCHS = 1 << 31  # "Forever".
STREAM_SHUFFLE = 10000  # shuffle buffer (examples) of a streamed training set


def _augment(x, seed):
  """Random crop with `_PAD` px zero padding + random horizontal flip.

  `x` is a float32 batch (B, H, W, C); `seed` a shape-[2] int64 key. Every
  image gets its own offsets and flip, all from stateless ops.
  """
  shape = tf.shape(x)
  b, h, w = shape[0], shape[1], shape[2]
  # Integer draws from Philox only: they are the same under XLA (float
  # draws and 'auto_select' are not), and `DeviceBatches` must give the
  # dataset's batches bitwise.
  crop_seed, flip_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, 2, alg='philox'))
  offsets = tf.random.stateless_uniform(
      [b, 2], crop_seed, minval=0, maxval=2 * _PAD + 1, dtype=tf.int32,
      alg='philox')
  flip = tf.random.stateless_uniform([b], flip_seed, minval=0, maxval=2,
                                     dtype=tf.int32, alg='philox') > 0
  padded = tf.pad(x, [[0, 0], [_PAD, _PAD], [_PAD, _PAD], [0, 0]])
  rows = offsets[:, :1] + tf.range(h)[None, :]  # (B, H)
  cols = offsets[:, 1:] + tf.range(w)[None, :]  # (B, W)
  cols = tf.where(flip[:, None], tf.reverse(cols, [1]), cols)
  x = tf.gather(padded, rows, axis=1, batch_dims=1)  # (B, H, W+2P, C)
  return tf.gather(x, cols, axis=2, batch_dims=1)  # (B, H, W, C)


def _options():
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.DATA)
  options.deterministic = True
  return options


def train_dataset(data, seed, start_step=0, global_batch_size=None):
  """An endless dataset of training batches, deterministic by global step.

  The batch for global step `s` is, with `spe = len(x_train) // B`, the slice
  `[i*B:(i+1)*B]` (i = s % spe) of the permutation
  `stateless_shuffle(range(n), seed=[seed, s // spe])` (the remainder of each
  epoch is dropped), and its augmentation is seeded with (seed, s). So
  `train_dataset(d, seed, start_step=k)` yields exactly batches k, k+1, ... of
  `train_dataset(d, seed)`.

  Args:
    data: a `Data`.
    seed: int; the training seed.
    start_step: the global step of the first batch.
    global_batch_size: batch size (over all replicas); default
      `data.batch_size`.

  Returns:
    A `tf.data.Dataset` of (x float32 raw pixels (B, H, W, C), y int32 (B,)).
  """
  seed = check_int('seed', seed, 0)
  start_step = check_int('start_step', start_step, 0)
  b = data.batch_size if global_batch_size is None else check_int(
      'global_batch_size', global_batch_size, 1)
  n = data.train_size
  if b > n:
    raise ConfigError('dataset.batch_size', f'{b} is larger than the number '
                      f'of training examples ({n})')
  spe = n // b
  if data.train_stream is not None:
    return _streamed_batches(data, seed, start_step, b, spe)
  x_all = tf.constant(data.x_train)
  y_all = tf.constant(data.y_train.astype(np.int32))
  seed_t = tf.constant(seed, tf.int64)

  def epoch_batches(epoch):
    perm = tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64), seed=tf.stack([seed_t, epoch]))
    idx = tf.reshape(perm[:spe * b], [spe, b])
    steps = epoch * spe + tf.range(spe, dtype=tf.int64)
    return tf.data.Dataset.from_tensor_slices((steps, idx))

  augment = data.augment

  def make_batch(step, idx):
    x = tf.cast(tf.gather(x_all, idx), tf.float32)
    y = tf.gather(y_all, idx)
    if augment:
      x = _augment(x, tf.stack([seed_t, step]))
    return x, y

  return _by_step(epoch_batches, make_batch, start_step, spe)


def _by_step(epoch_batches, make_batch, start_step, spe):
  """Batches start_step, start_step + 1, ... of the epochs
  `epoch_batches(epoch)` (datasets of `spe` (step, batch) elements), each
  mapped by `make_batch(step, batch)`: endless, deterministic by step."""
  ds = tf.data.Dataset.range(start_step // spe, _MAX_EPOCHS)
  ds = ds.flat_map(epoch_batches).skip(start_step % spe)
  ds = ds.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE,
              deterministic=True)
  return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())


def _seeded_shuffle(stream, buffer, seed, seed2):
  """`stream.shuffle(buffer)` seeded with (seed, seed2) alone, `seed2` a
  tensor (tf.data's `shuffle` combines its seed with the global one, and
  its seed must be a Python int inside a traced function); seed2 > 0, as
  (0, 0) means "nondeterministic" to the op."""
  spec = stream.element_spec
  variant = tf.raw_ops.ShuffleDataset(
      input_dataset=tf.data.experimental.to_variant(stream),
      buffer_size=tf.constant(buffer, tf.int64),
      seed=tf.constant(seed, tf.int64), seed2=tf.cast(seed2, tf.int64),
      reshuffle_each_iteration=False,
      output_types=[s.dtype for s in tf.nest.flatten(spec)],
      output_shapes=[s.shape for s in tf.nest.flatten(spec)])
  return tf.data.experimental.from_variant(variant, spec)


def _streamed_batches(data, seed, start_step, b, spe):
  """`train_dataset` of a streamed training set: epoch e is the stream
  shuffled in a buffer of `STREAM_SHUFFLE` examples seeded with (seed, e),
  cut into `spe` batches of `b` (the remainder dropped); a start inside an
  epoch reads and skips that epoch's earlier batches. Augmentation as in
  memory, seeded with (seed, step)."""
  stream = data.train_stream
  buffer = min(STREAM_SHUFFLE, data.train_size)

  def epoch_batches(epoch):
    shuffled = _seeded_shuffle(stream, buffer, seed, epoch + 1)
    steps = tf.data.Dataset.range(epoch * spe, (epoch + 1) * spe)
    return tf.data.Dataset.zip((steps, shuffled.batch(b, drop_remainder=True)
                                .take(spe)))

  augment = data.augment

  def make_batch(step, batch):
    x, y = batch
    x = tf.cast(x, tf.float32)
    if augment:
      x = _augment(x, tf.stack([tf.constant(seed, tf.int64), step]))
    return x, tf.cast(y, tf.int32)

  return _by_step(epoch_batches, make_batch, start_step, spe)


class DeviceBatches:
  """The batches of `train_dataset(data, seed)` computed on the device, for
  a training loop compiled whole (one device): the batch of global step `s`
  is gathered from the training images held in a variable with the same
  epoch permutation and augmentation, so it equals the dataset's bitwise.

  `prepare(step)` (on the host) makes the permutation of `step`'s epoch
  current; `batch(s)` (in a compiled function) is then valid for every `s`
  of that epoch.
  """

  def __init__(self, data, seed):
    self.batch_size = data.batch_size
    self.steps_per_epoch = len(data.x_train) // data.batch_size
    self.seed, self.augment = int(seed), data.augment
    self.x = tf.Variable(data.x_train, trainable=False)
    self.y = tf.Variable(data.y_train.astype(np.int32), trainable=False)
    self.perm = tf.Variable(tf.zeros([self.steps_per_epoch * self.batch_size],
                                     tf.int64), trainable=False)
    self.epoch = None

  def prepare(self, step):
    epoch = step // self.steps_per_epoch
    if epoch != self.epoch:
      perm = tf.random.experimental.stateless_shuffle(
          tf.range(self.x.shape[0], dtype=tf.int64),
          seed=tf.constant([self.seed, epoch], tf.int64))
      self.perm.assign(perm[:self.perm.shape[0]])
      self.epoch = epoch

  def batch(self, step):
    """(x float32 raw pixels, y int32) of global step `step` (int64)."""
    b = self.batch_size
    i = step % self.steps_per_epoch
    # A gather, not a slice: XLA would take a slice's start as a
    # compile-time constant and recompile for every step.
    idx = tf.gather(self.perm, i * b + tf.range(b, dtype=tf.int64))
    x = tf.cast(tf.gather(self.x, idx), tf.float32)
    y = tf.gather(self.y, idx)
    if self.augment:
      x = _augment(x, tf.stack([tf.constant(self.seed, tf.int64), step]))
    return x, y


EVAL_BATCH = 1000  # examples per evaluation batch


def eval_dataset(x, y, batch_size=EVAL_BATCH):
  """A finite dataset of (x float32 raw pixels, y int32) batches."""
  batch_size = check_int('batch_size', batch_size, 1)
  ds = tf.data.Dataset.from_tensor_slices(
      (np.asarray(x), np.asarray(y).astype(np.int32)))
  ds = ds.batch(batch_size).cache()
  ds = ds.map(lambda a, b: (tf.cast(a, tf.float32), b),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())


def calibration_images(data, n=300):
  """The first `n` training images as float32 raw pixels (N, H, W, C)."""
  n = check_int('n', n, 1)
  return data.x_train[:n].astype(np.float32)
