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
# The pipelines of a `Data` live in tf_tickets.pipelines; these names are
# also reached here, their first home.
from tf_tickets.pipelines import EVAL_BATCH  # noqa: F401
from tf_tickets.pipelines import DeviceBatches  # noqa: F401
from tf_tickets.pipelines import calibration_images  # noqa: F401
from tf_tickets.pipelines import eval_dataset  # noqa: F401
from tf_tickets.pipelines import train_dataset  # noqa: F401
from tf_tickets.errors import ConfigError, check_bool, check_choice, check_int

DATASETS = ('mnist', 'fashion_mnist', 'cifar10', 'cifar100')
IDX_DATASETS = ('mnist', 'fashion_mnist')
NUM_CLASSES = {'mnist': 10, 'fashion_mnist': 10, 'cifar10': 10,
               'cifar100': 100}
NORMALIZE = ('standard', 'unit', 'none')
SAMPLE = 10000  # training examples kept in memory from a stream


@dataclasses.dataclass(frozen=True, eq=False)
class Data:
  """A dataset: uint8 NHWC images and int64 labels, in memory; or, with
  `train_stream` (a `tf.data.Dataset` of (image, label) examples), a
  training set streamed through tf.data of `num_train` examples, of which
  `x_train`/`y_train` hold the first (at most `SAMPLE`) for what needs
  arrays (normalisation statistics, int8 calibration, a fixed scoring
  batch). Validation and test sets are held in memory."""
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
  train_stream: object = None
  num_train: int = None

  @property
  def train_size(self):
    """The number of training examples (streamed ones included)."""
    return len(self.x_train) if self.train_stream is None else self.num_train

  @property
  def input_shape(self):
    """(H, W, C) of one image."""
    return tuple(int(d) for d in self.x_train.shape[1:])

  @property
  def steps_per_epoch(self):
    return max(1, self.train_size // self.batch_size)


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
  stream: stream the TFDS training split through tf.data instead of
    loading it into memory (for datasets larger than memory; see `Data`).
    A `loader` returning `tf.data.Dataset`s streams regardless. A streamed
    training set holds out its first `validation_examples` as the
    validation set (not a random subset) and is shuffled per epoch in a
    buffer of `pipelines.STREAM_SHUFFLE` examples (not a full permutation).
  loader: None, or your function (gin: `dataset.loader = @my_data.load`
    with `import my_data` in the gin file) returning ((x_train, y_train),
    (x_test, y_test)) numpy arrays as `keras.datasets.*.load_data()` do:
    uint8 images (N, H, W) or (N, H, W, C) and integer labels 0..K-1;
    `name`, `idx_dir` and `data_dir` are then not used. It may also
    return (train, test) `tf.data.Dataset`s of (image, label) examples:
    the training set then streams (see `stream`), the test set is read
    into memory.
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
  stream: bool = False

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
    self.set('stream', check_bool('dataset.stream', self.stream))
    for name in ('idx_dir', 'data_dir'):
      if getattr(self, name) is not None:
        self.set(name, os.fspath(getattr(self, name)))


def load_dataset(*args, **kwargs):
  """`load(DatasetSettings(*args, **kwargs))`: e.g.
  `load_dataset('fashion_mnist', idx_dir=..., batch_size=128)`."""
  return load(DatasetSettings(*args, **kwargs))


def load(cfg):
  """Loads the dataset of `cfg` (a `DatasetSettings`) into memory (or
  streams its training set, see `Data`) and splits a validation set off
  train; returns a `Data`."""
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
    if isinstance(x_train, tf.data.Dataset):
      return _streamed(cfg, name, x_train, x_test, y_test, None)
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
        name, data_dir, stream=cfg.stream)
    if cfg.stream:
      return _streamed(cfg, name, x_train, x_test, y_test, num_classes)

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

  mean, std = _statistics(x_train, normalize)
  if augment is None:
    augment = name in ('cifar10', 'cifar100') and loader is None
  return Data(
      name=name,
      x_train=np.ascontiguousarray(x_train), y_train=y_train,
      x_val=np.ascontiguousarray(x_val), y_val=y_val,
      x_test=np.ascontiguousarray(x_test), y_test=y_test,
      num_classes=num_classes, mean=mean, std=std,
      batch_size=batch_size, augment=bool(augment))


def _statistics(x_train, normalize):
  """(mean, std) per channel of `dataset.normalize` for these images."""
  channels = x_train.shape[-1]
  if normalize == 'standard':
    return _channel_stats(x_train)
  if normalize == 'unit':
    return (0.0,) * channels, (255.0,) * channels
  return (0.0,) * channels, (1.0,) * channels


def _take(stream, n):
  """The first `n` examples of a stream as (uint8 images, int64 labels)."""
  xs, ys = [], []
  for x, y in stream.take(n).batch(1000):
    xs.append(x.numpy())
    ys.append(y.numpy())
  if not xs:
    return None, None
  return np.concatenate(xs), np.concatenate(ys).astype(np.int64)


def _streamed(cfg, name, train, x_test, y_test, num_classes):
  """The `Data` of a streamed training set `train` (see `Data`)."""
  n_val = cfg.validation_examples
  x_val, y_val = _take(train, n_val) if n_val else (None, None)
  if n_val and (x_val is None or len(x_val) < n_val):
    raise ConfigError('dataset.validation_examples', f'{n_val} must be less '
                      'than the number of training examples')
  train = train.skip(n_val)
  if cfg.max_train_examples is not None:
    train = train.take(cfg.max_train_examples)
  num_train = int(train.cardinality())
  if num_train < 0:  # unknown: one pass to count
    num_train = int(train.reduce(np.int64(0), lambda n, _: n + 1))
    logging.info('dataset: %d streamed training examples (counted)',
                 num_train)
  if cfg.batch_size > num_train:
    raise ConfigError('dataset.batch_size', f'{cfg.batch_size} is larger than '
                      f'the number of training examples ({num_train})')
  x_sample, y_sample = _take(train, min(SAMPLE, num_train))
  if x_val is None:
    x_val, y_val = x_sample[:0], y_sample[:0]
  if num_classes is None:  # from the labels seen: sample, validation, test
    num_classes = int(max(y_sample.max(), y_test.max(),
                          y_val.max() if len(y_val) else 0)) + 1
  mean, std = _statistics(x_sample, cfg.normalize)
  augment = name in ('cifar10', 'cifar100') if cfg.augment is None else \
      cfg.augment
  logging.info('dataset: %s streams %d training examples through tf.data',
               name, num_train)
  return Data(name=name, x_train=x_sample, y_train=y_sample, x_val=x_val,
              y_val=y_val, x_test=x_test, y_test=y_test,
              num_classes=num_classes, mean=mean, std=std,
              batch_size=cfg.batch_size, augment=bool(augment),
              train_stream=train, num_train=num_train)

