"""Datasets: loading (from `sources`), holdout split and input pipelines.

The arrays are kept in memory as uint8 images (NHWC) and int64 labels. The
pipelines yield raw float32 pixel values in 0..255: normalisation is the job
of the model's first layer (see `tf_tickets.models`), so exported models take
raw pixels. `Data.mean` / `Data.std` hold the per-channel statistics the
model's normalisation layer should use.

`train_dataset` is deterministic by step: the batch for global step `s` depends
only on (`seed`, `s`), so training can resume at any step without saving any
iterator state.
"""
import dataclasses
import os

from absl import logging
import numpy as np

from tf_tickets.keras import keras  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF is imported)
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-order

from tf_tickets import settings
from tf_tickets import sources
from tf_tickets.errors import ConfigError, check_choice, check_int

DATASETS = ('mnist', 'fashion_mnist', 'cifar10', 'cifar100')
IDX_DATASETS = ('mnist', 'fashion_mnist')
NUM_CLASSES = {'mnist': 10, 'fashion_mnist': 10, 'cifar10': 10,
               'cifar100': 100}
NORMALIZE = ('standard', 'unit', 'none')
_PAD = 4  # Random-crop padding (pixels) of the CIFAR augmentation.
_MAX_EPOCHS = 1 << 31  # "Forever".


@dataclasses.dataclass(frozen=True, eq=False)
class Data:
  """A dataset in memory: uint8 NHWC images and int64 labels."""
  name: str
  x_train: np.ndarray
  y_train: np.ndarray
  x_val: np.ndarray
  y_val: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  mean: tuple
  std: tuple
  batch_size: int
  augment: bool

  @property
  def input_shape(self):
    """(H, W, C) of one image."""
    return tuple(int(d) for d in self.x_train.shape[1:])

  @property
  def steps_per_epoch(self):
    return max(1, len(self.x_train) // self.batch_size)


# ---------------------------------------------------------------- loading


def _channel_stats(x, chunk=4096):
  """Per-channel mean and std of uint8 NHWC images, in pixel units."""
  c = x.shape[-1]
  s = np.zeros(c, np.float64)
  s2 = np.zeros(c, np.float64)
  for i in range(0, len(x), chunk):
    part = x[i:i + chunk].reshape(-1, c).astype(np.float64)
    s += part.sum(0)
    s2 += np.square(part).sum(0)
  count = x.size // c
  mean = s / count
  std = np.sqrt(np.maximum(s2 / count - mean * mean, 0.0))
  std = np.where(std > 0, std, 1.0)
  return tuple(float(v) for v in mean), tuple(float(v) for v in std)


@settings.section('dataset')
class DatasetSettings(settings.Settings):
  """Dataset settings (gin: `dataset.*`).

  name: 'mnist', 'fashion_mnist', 'cifar10', 'cifar100', or any TFDS
    supervised image classification dataset with train and test splits
    (its classes and image shape from TFDS's dataset info).
  idx_dir: directory of the four MNIST-format IDX .gz files (mnist and
    fashion_mnist only); when set TFDS is not used.
  data_dir: TFDS data_dir holding the prepared dataset (no download then).
  max_train_examples: keep only the first N training examples (after the
    validation holdout); None keeps all.
  validation_examples: number of examples held out of the TRAIN split for
    validation, chosen by a permutation seeded with `split_seed`. 0 means
    no validation set.
  batch_size: training batch size.
  augment: random crop (4 px padding) + horizontal flip; None means True
    for cifar10/cifar100 and False for mnist/fashion_mnist.
  normalize: 'standard' (per-channel mean/std of the training images),
    'unit' (x / 255) or 'none'. Only recorded in `Data.mean`/`Data.std`; the
    model's first layer applies it.
  split_seed: seed of the holdout permutation (independent of the training
    seed so that the validation set is fixed).
  loader: None, or your function (gin: `dataset.loader = @my_data.load`
    with `import my_data` in the gin file) returning ((x_train, y_train),
    (x_test, y_test)) numpy arrays as `keras.datasets.*.load_data()` do:
    uint8 images (N, H, W) or (N, H, W, C) and integer labels 0..K-1;
    `name`, `idx_dir` and `data_dir` are then not used. The images stay
    in memory, as every dataset here does.
  """
  name: str = 'mnist'
  idx_dir: str = None
  data_dir: str = None
  max_train_examples: int = None
  validation_examples: int = 5000
  batch_size: int = 60
  augment: bool = None
  normalize: str = 'standard'
  split_seed: int = 0
  loader: object = None

  def validate(self):
    if self.loader is None and self.idx_dir is not None:
      check_choice('dataset.name', self.name, DATASETS)
    if self.loader is not None and not callable(self.loader):
      raise ConfigError('dataset.loader', 'expected a function (gin: '
                        f'@module.function), got {self.loader!r}')
    check_choice('dataset.normalize', self.normalize, NORMALIZE)
    self.set('batch_size', check_int('dataset.batch_size', self.batch_size,
                                     1))
    self.set('validation_examples', check_int(
        'dataset.validation_examples', self.validation_examples, 0))
    self.set('split_seed', check_int('dataset.split_seed', self.split_seed,
                                     0))
    if self.max_train_examples is not None:
      self.set('max_train_examples', check_int(
          'dataset.max_train_examples', self.max_train_examples, 1))
    if self.augment is not None and not isinstance(self.augment,
                                                   (bool, np.bool_)):
      raise ConfigError('dataset.augment', 'expected True, False or None '
                        f'(auto), got {self.augment!r}')
    for name in ('idx_dir', 'data_dir'):
      if getattr(self, name) is not None:
        self.set(name, os.fspath(getattr(self, name)))


def load_dataset(*args, **kwargs):
  """`load(DatasetSettings(*args, **kwargs))`: e.g.
  `load_dataset('fashion_mnist', idx_dir=..., batch_size=128)`."""
  return load(DatasetSettings(*args, **kwargs))


def load(cfg):
  """Loads the dataset of `cfg` (a `DatasetSettings`) into memory and
  splits a validation set off train; returns a `Data`."""
  name, idx_dir, data_dir, loader = cfg.name, cfg.idx_dir, cfg.data_dir, \
      cfg.loader
  validation_examples, max_train_examples = (cfg.validation_examples,
                                             cfg.max_train_examples)
  batch_size, normalize, augment = cfg.batch_size, cfg.normalize, cfg.augment
  if loader is not None:
    if idx_dir is not None or data_dir is not None:
      logging.warning('dataset.loader is set: dataset.idx_dir and '
                      'dataset.data_dir are not used')
    name = getattr(loader, '__name__', 'loader')
    x_train, y_train, x_test, y_test = sources.load_own(loader)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
  elif idx_dir is not None:
    if name not in IDX_DATASETS:
      raise ConfigError(
          'dataset.idx_dir', f'IDX files are only supported for '
          f'{", ".join(IDX_DATASETS)}, not {name!r}; unset dataset.idx_dir '
          'to load it with TFDS')
    x_train, y_train, x_test, y_test = sources.load_idx(idx_dir)
    num_classes = NUM_CLASSES[name]
    sources.check_idx_matches(name, idx_dir, x_train)
  else:
    x_train, y_train, x_test, y_test, num_classes = sources.load_tfds(
        name, data_dir)

  n = len(x_train)
  if validation_examples >= n:
    raise ConfigError(
        'dataset.validation_examples', f'{validation_examples} must be less '
        f'than the number of training examples ({n})')
  perm = np.random.RandomState(cfg.split_seed).permutation(n)
  val_idx = np.sort(perm[:validation_examples])
  train_idx = np.sort(perm[validation_examples:])
  x_val, y_val = x_train[val_idx], y_train[val_idx]
  x_train, y_train = x_train[train_idx], y_train[train_idx]
  if max_train_examples is not None:
    x_train = x_train[:max_train_examples]
    y_train = y_train[:max_train_examples]
  if batch_size > len(x_train):
    raise ConfigError(
        'dataset.batch_size', f'{batch_size} is larger than the number of '
        f'training examples ({len(x_train)})')

  channels = x_train.shape[-1]
  if normalize == 'standard':
    mean, std = _channel_stats(x_train)
  elif normalize == 'unit':
    mean, std = (0.0,) * channels, (255.0,) * channels
  else:
    mean, std = (0.0,) * channels, (1.0,) * channels
  if augment is None:
    augment = name in ('cifar10', 'cifar100') and loader is None

  return Data(
      name=name,
      x_train=np.ascontiguousarray(x_train), y_train=y_train,
      x_val=np.ascontiguousarray(x_val), y_val=y_val,
      x_test=np.ascontiguousarray(x_test), y_test=y_test,
      num_classes=num_classes, mean=mean, std=std,
      batch_size=batch_size, augment=bool(augment))


# ---------------------------------------------------------------- pipelines


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
  n = len(data.x_train)
  if b > n:
    raise ConfigError('dataset.batch_size', f'{b} is larger than the number '
                      f'of training examples ({n})')
  spe = n // b
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

  ds = tf.data.Dataset.range(start_step // spe, _MAX_EPOCHS)
  ds = ds.flat_map(epoch_batches).skip(start_step % spe)
  ds = ds.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE,
              deterministic=True)
  return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())


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
