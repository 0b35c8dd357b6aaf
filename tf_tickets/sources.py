"""Where the images come from: MNIST-format IDX files (offline) or TFDS.

Each loader returns `(x_train, y_train, x_test, y_test)` as uint8 NHWC
images and int64 labels, and raises ConfigError naming the setting
(`dataset.idx_dir`, `dataset.name`, `dataset.data_dir`) on any failure.
"""
import gzip
import os
import socket
import urllib.parse

from absl import logging
import numpy as np

from tf_tickets.keras import keras  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF is imported)
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-order

from tf_tickets.errors import ConfigError
from tf_tickets.errors import first_line

IDX_FILES = ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
             't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')
# Where TFDS downloads each dataset from (the URLs of its builders). Probed
# before TFDS is asked to download, so that an offline machine fails in
# seconds instead of after TFDS's retry loop (minutes).
DOWNLOAD_URLS = {
    'mnist': 'https://storage.googleapis.com/cvdf-datasets/mnist/',
    'fashion_mnist':
        'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
    'cifar10': 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
    'cifar100': 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
}
_PROBE_TIMEOUT = 10.0  # seconds
# Fraction of exactly-0 pixels in the training images: ~0.81 for the MNIST
# digits, ~0.50 for Fashion-MNIST; IDX files far from their dataset.name's
# value are refused (a Fashion-MNIST run silently labelled "mnist").
_ZERO_FRACTION = {'mnist': (0.7, 1.0), 'fashion_mnist': (0.0, 0.65)}

# ---------------------------------------------------------------- IDX files


def _read_idx(path, expected_ndim, setting='dataset.idx_dir'):
  """Parses one gzipped IDX file of unsigned bytes into a numpy array."""
  try:
    with gzip.open(path, 'rb') as f:
      raw = f.read()
  except (OSError, EOFError) as e:
    raise ConfigError(setting, f'cannot read {path}: {e}') from None
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
    raise ConfigError(setting, f'{path} is not an IDX file (bad magic number)')
  if raw[2] != 0x08:
    raise ConfigError(setting, f'{path}: IDX data type 0x{raw[2]:02x} is not '
                      'supported; expected 0x08 (unsigned byte)')
  ndim = raw[3]
  if ndim != expected_ndim:
    raise ConfigError(setting, f'{path}: magic number says {ndim} dimensions, '
                      f'expected {expected_ndim} (magic 0x0000080'
                      f'{expected_ndim})')
  header = 4 + 4 * ndim
  dims = tuple(int(d) for d in np.frombuffer(raw, '>u4', ndim, offset=4))
  size = int(np.prod(dims))
  if len(raw) - header != size:
    raise ConfigError(setting, f'{path}: header says shape {dims} '
                      f'({size} bytes) but the file holds {len(raw) - header}')
  return np.frombuffer(raw, np.uint8, size, offset=header).reshape(dims)


def load_idx(idx_dir):
  if not os.path.isdir(idx_dir):
    raise ConfigError(
        'dataset.idx_dir', f'directory {idx_dir!r} does not exist; it must '
        'hold the MNIST-format IDX files ' + ', '.join(IDX_FILES))
  missing = [os.path.join(idx_dir, f) for f in IDX_FILES
             if not os.path.isfile(os.path.join(idx_dir, f))]
  if missing:
    raise ConfigError(
        'dataset.idx_dir', 'missing ' + ', '.join(missing) + '; the directory '
        'must hold the MNIST-format IDX files ' + ', '.join(IDX_FILES))
  arrays = []
  for fname in IDX_FILES:
    a = _read_idx(os.path.join(idx_dir, fname), 3 if 'images' in fname else 1)
    arrays.append(a)
  x_train, y_train, x_test, y_test = arrays
  for x, y, split in ((x_train, y_train, 'train'), (x_test, y_test, 't10k')):
    if len(x) != len(y):
      raise ConfigError('dataset.idx_dir', f'{split}: {len(x)} images but '
                        f'{len(y)} labels in {idx_dir}')
  logging.info('dataset: read %d train and %d test examples from %s',
               len(x_train), len(x_test),
               ', '.join(os.path.join(idx_dir, f) for f in IDX_FILES))
  return (x_train[..., None], y_train.astype(np.int64),
          x_test[..., None], y_test.astype(np.int64))


# ---------------------------------------------------------------- TFDS


def check_idx_matches(name, idx_dir, x_train):
  """Refuses IDX files that are clearly the other dataset (by the fraction of
  exactly-0 pixels, see `_ZERO_FRACTION`)."""
  zeros = float(np.mean(x_train[:10000] == 0))
  low, high = _ZERO_FRACTION[name]
  if not low <= zeros <= high:
    other = 'fashion_mnist' if name == 'mnist' else 'mnist'
    raise ConfigError(
        'dataset.idx_dir', f'the IDX files in {idx_dir!r} look like '
        f'{other!r}, not dataset.name = {name!r} ({zeros:.0%} of the '
        'training pixels are 0; MNIST digits have about 81%, Fashion-MNIST '
        f'about 50%); set dataset.name = {other!r}')


def _reachable(url, timeout=_PROBE_TIMEOUT):
  """True if a TCP connection to the host of `url` opens within `timeout`."""
  parts = urllib.parse.urlsplit(url)
  port = parts.port or (443 if parts.scheme == 'https' else 80)
  try:
    with socket.create_connection((parts.hostname, port), timeout=timeout):
      return True
  except OSError:
    return False


def _offline_error(name, why):
  return ConfigError(
      'dataset.name', f'cannot load {name!r} with TFDS: {why}. Without '
      'internet set dataset.idx_dir to a directory of the four MNIST-format '
      'IDX files (mnist and fashion_mnist only; e.g. `apt-get install '
      'dataset-fashion-mnist` puts Fashion-MNIST in '
      "/usr/share/datasets/fashion-mnist: dataset.name = 'fashion_mnist', "
      "dataset.idx_dir = '/usr/share/datasets/fashion-mnist'), or "
      'dataset.data_dir to a TFDS data_dir where the dataset is prepared '
      'already')


def _no_variant_folder_warning(record):
  return not record.getMessage().startswith('Variant folder')


def _tfds_builder(tfds, name, data_dir):
  """The TFDS builder of `name` (registered, or prepared in `data_dir`),
  checked to be a supervised image classification dataset."""
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # pylint: disable=broad-except
    where = f' nor prepared in {data_dir!r}' if data_dir else ''
    raise ConfigError(
        'dataset.name', f'unknown dataset {name!r}: valid: '
        f'{", ".join(map(repr, DOWNLOAD_URLS))}, any TFDS supervised image '
        f'classification dataset, or dataset.loader; {name!r} is no TFDS '
        f'dataset{where} ({type(e).__name__}: {first_line(e)[:200]})'
    ) from None
  info = builder.info
  keys = info.supervised_keys
  features = info.features
  label = features[keys[1]] if keys else None
  image = features[keys[0]] if keys else None
  if (label is None or not hasattr(label, 'num_classes')
      or getattr(image, 'shape', None) is None or len(image.shape) != 3
      or None in image.shape):
    raise ConfigError(
        'dataset.name', f'{name!r} is not a supervised image classification '
        'dataset with images of one size (TFDS supervised keys (image, '
        f'label) with a ClassLabel); its features: {features}')
  missing = {'train', 'test'} - set(info.splits) if info.splits else set()
  if missing:
    raise ConfigError('dataset.name', f'{name!r} has no split(s) '
                      f'{sorted(missing)}; splits: {list(info.splits)}')
  return builder, int(label.num_classes)


def load_tfds(name, data_dir, stream=False):
  """Loads train and test of a TFDS supervised image classification dataset
  as numpy arrays; returns them and the number of classes. With `stream`
  the train split is returned as a `tf.data.Dataset` of (image, label)
  examples in the files' order (y_train None), the test split in memory.

  With `data_dir` given the dataset must be prepared there already (no
  download, so an empty or wrong data_dir fails at once instead of waiting on
  the network; a dataset whose builder is not registered is read from its
  prepared files); without it TFDS may download into its default directory,
  after a quick check that the download host answers (for the four
  datasets whose host is known).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  absl_logger = logging.get_absl_logger()
  # Probing a dataset that is not prepared warns about the folder it
  # looked in ("Variant folder ... has no dataset_info.json"): noise
  # before the clear error below.
  absl_logger.addFilter(_no_variant_folder_warning)
  try:
    builder, num_classes = _tfds_builder(tfds, name, data_dir)
    try:
      prepared = builder.is_prepared()
    except Exception:  # pylint: disable=broad-except
      prepared = False
  finally:
    absl_logger.removeFilter(_no_variant_folder_warning)
  url = DOWNLOAD_URLS.get(name)
  if data_dir is None and not prepared and url and not _reachable(url):
    raise _offline_error(
        name, f'it is not prepared in TFDS\'s data directory and '
        f'{urllib.parse.urlsplit(url).hostname} cannot be reached (is the '
        'machine offline?)')
  try:
    if stream:
      train = tfds.load(name, split='train', as_supervised=True,
                        shuffle_files=False, data_dir=data_dir,
                        download=data_dir is None)
      x_test, y_test = tfds.as_numpy(tfds.load(
          name, split='test', batch_size=-1, as_supervised=True,
          data_dir=data_dir, download=False))
      return (train.map(lambda x, y: (x, tf.cast(y, tf.int64))), None,
              np.asarray(x_test, np.uint8), np.asarray(y_test, np.int64),
              num_classes)
    (x_train, y_train), (x_test, y_test) = tfds.as_numpy(tfds.load(
        name, split=['train', 'test'], batch_size=-1, as_supervised=True,
        data_dir=data_dir, download=data_dir is None))
  except Exception as e:  # pylint: disable=broad-except
    where = (f'it is not prepared in data_dir {data_dir!r} (no download is '
             'tried when dataset.data_dir is set)' if data_dir else
             'the download failed')
    raise _offline_error(
        name, f'{where} ({type(e).__name__}: {first_line(e)[:300]})') from e
  logging.info('dataset: %s from TFDS (%s)', name, data_dir or 'default '
               'data directory')
  return (np.asarray(x_train, np.uint8), np.asarray(y_train, np.int64),
          np.asarray(x_test, np.uint8), np.asarray(y_test, np.int64),
          num_classes)


def load_own(loader):
  """(x_train, y_train, x_test, y_test) from your `dataset.loader`, checked:
  uint8 images (N, H, W[, C]) of one shape, integer labels 0..K-1; for a
  loader returning (train, test) `tf.data.Dataset`s of (image, label)
  examples: (train stream, None, x_test, y_test)."""
  name = getattr(loader, '__name__', repr(loader))
  if not callable(loader):
    raise ConfigError('dataset.loader', f'expected a function (gin: '
                      f'@module.function), got {loader!r}')
  returned = loader()
  if (isinstance(returned, (tuple, list)) and len(returned) == 2
      and isinstance(returned[0], tf.data.Dataset)):
    return _own_streams(name, *returned)
  try:
    (x_train, y_train), (x_test, y_test) = returned
  except (TypeError, ValueError) as e:
    raise ConfigError('dataset.loader', f'{name}() must return ((x_train, '
                      f'y_train), (x_test, y_test)) arrays or (train, test) '
                      f'tf.data.Datasets ({e})') from None
  return _checked(name, x_train, y_train, x_test, y_test)


def _own_streams(name, train, test):
  """A loader's (train, test) datasets: the train stream, checked for
  (uint8 image, integer label) examples; the test set read into memory."""
  spec = train.element_spec
  if not (isinstance(spec, tuple) and len(spec) == 2
          and spec[0].dtype == tf.uint8 and spec[0].shape.rank in (2, 3)
          and spec[1].dtype.is_integer and spec[1].shape.rank == 0):
    raise ConfigError('dataset.loader', f'{name}(): the train dataset must '
                      'yield (uint8 image (H, W) or (H, W, C), integer label) '
                      f'examples, not batches; got {spec}')
  if spec[0].shape.rank == 2:
    train = train.map(lambda x, y: (x[..., None], y))
  if not isinstance(test, tf.data.Dataset):
    raise ConfigError('dataset.loader', f'{name}(): with a train dataset '
                      'the test set must be a tf.data.Dataset too')
  xs, ys = [], []
  for x, y in test.batch(1000):
    xs.append(x.numpy())
    ys.append(y.numpy())
  if not xs:
    raise ConfigError('dataset.loader', f'{name}(): the test dataset is '
                      'empty')
  x_test, y_test = np.concatenate(xs), np.concatenate(ys)
  _, _, x_test, y_test = _checked(name, x_test[:1], y_test[:1], x_test,
                                  y_test)
  if tuple(x_test.shape[1:]) != tuple(train.element_spec[0].shape):
    raise ConfigError('dataset.loader', f'{name}(): train images are '
                      f'{tuple(train.element_spec[0].shape)}, test images '
                      f'{x_test.shape[1:]}')
  return (train.map(lambda x, y: (x, tf.cast(y, tf.int64))), None, x_test,
          y_test)


def _checked(name, x_train, y_train, x_test, y_test):
  """Arrays of a loader, checked (see `load_own`)."""
  out = []
  for split, x, y in (('train', x_train, y_train), ('test', x_test, y_test)):
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    if x.ndim == 3:
      x = x[..., None]
    if x.ndim != 4 or x.dtype != np.uint8:
      raise ConfigError('dataset.loader', f'{name}(): {split} images must be '
                        f'uint8 (N, H, W) or (N, H, W, C), got {x.dtype} '
                        f'{x.shape}')
    if len(x) != len(y) or not len(x):
      raise ConfigError('dataset.loader', f'{name}(): {len(x)} {split} '
                        f'images but {len(y)} labels')
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
      raise ConfigError('dataset.loader', f'{name}(): {split} labels must be '
                        f'integers 0..K-1, got {y.dtype} from {y.min()}')
    out += [x, y.astype(np.int64)]
  if out[0].shape[1:] != out[2].shape[1:]:
    raise ConfigError('dataset.loader', f'{name}(): train images are '
                      f'{out[0].shape[1:]}, test images {out[2].shape[1:]}')
  return tuple(out)
