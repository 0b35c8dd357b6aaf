"""Tests of tf_tickets.data (IDX fixture, holdout split, pipelines, errors)."""
import dataclasses
import gzip
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import cli

from tf_tickets.keras import keras  # noqa: F401  (before tensorflow)
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-order

from tf_tickets import data as data_lib
from tf_tickets import sources
from tf_tickets.errors import ConfigError

FIXTURE = os.path.join(os.path.dirname(__file__), 'data', 'fashion_mnist_small')


def _load(**kw):
  kw.setdefault('name', 'fashion_mnist')
  kw.setdefault('idx_dir', FIXTURE)
  kw.setdefault('validation_examples', 500)
  return data_lib.load_dataset(**kw)


@pytest.fixture(scope='module')
def fmnist():
  return _load(batch_size=500)


def _indexed_data(n=250, batch_size=20, augment=False, hw=8, channels=1):
  """A Data whose image i encodes i in its first two pixels."""
  x = np.zeros((n, hw, hw, channels), np.uint8)
  x[:, 0, 0, 0] = np.arange(n) // 256
  x[:, 0, 1, 0] = np.arange(n) % 256
  y = (np.arange(n) % 10).astype(np.int64)
  empty_x, empty_y = x[:0], y[:0]
  return data_lib.Data(
      name='synthetic', x_train=x, y_train=y, x_val=empty_x, y_val=empty_y,
      x_test=empty_x, y_test=empty_y, num_classes=10,
      mean=(0.0,) * channels, std=(1.0,) * channels, batch_size=batch_size,
      augment=augment)


def _indices(batch_x):
  x = np.asarray(batch_x)
  return (x[:, 0, 0, 0] * 256 + x[:, 0, 1, 0]).astype(np.int64)


def _take(ds, k):
  return [(x.numpy(), y.numpy()) for x, y in ds.take(k)]


# ------------------------------------------------------------- loading


def test_idx_fixture_loads(fmnist):
  d = fmnist
  assert d.name == 'fashion_mnist'
  assert d.x_train.shape == (2500, 28, 28, 1)
  assert d.x_val.shape == (500, 28, 28, 1)
  assert d.x_test.shape == (1000, 28, 28, 1)
  for x in (d.x_train, d.x_val, d.x_test):
    assert x.dtype == np.uint8
  for y in (d.y_train, d.y_val, d.y_test):
    assert y.dtype == np.int64
    assert y.min() >= 0 and y.max() <= 9
  assert set(np.unique(d.y_test)) == set(range(10))
  assert d.num_classes == 10
  assert d.input_shape == (28, 28, 1)
  assert d.steps_per_epoch == 5
  assert d.augment is False
  assert d.x_train.max() > 200  # Real images, not blank.
  assert dataclasses.is_dataclass(d)
  with pytest.raises(dataclasses.FrozenInstanceError):
    d.batch_size = 3  # pytype: disable=not-writable


def test_normalize_statistics(fmnist):
  x = fmnist.x_train.astype(np.float64)
  assert len(fmnist.mean) == len(fmnist.std) == 1
  np.testing.assert_allclose(fmnist.mean[0], x.mean(), rtol=1e-9)
  np.testing.assert_allclose(fmnist.std[0], x.std(), rtol=1e-6)
  unit = _load(normalize='unit')
  assert unit.mean == (0.0,) and unit.std == (255.0,)
  none = _load(normalize='none')
  assert none.mean == (0.0,) and none.std == (1.0,)


def test_validation_split_sizes_and_determinism():
  full = _load(validation_examples=0)
  assert full.x_train.shape[0] == 3000 and full.x_val.shape[0] == 0
  a = _load(split_seed=0)
  b = _load(split_seed=0)
  c = _load(split_seed=1)
  np.testing.assert_array_equal(a.x_val, b.x_val)
  np.testing.assert_array_equal(a.y_train, b.y_train)
  assert not np.array_equal(a.x_val, c.x_val)
  # Train and validation partition the original train split.
  def rows(x):
    return sorted(r.tobytes() for r in x)
  assert rows(np.concatenate([a.x_train, a.x_val])) == rows(full.x_train)
  # The test split is untouched.
  np.testing.assert_array_equal(a.x_test, full.x_test)


def test_max_train_examples_after_holdout():
  a = _load()
  b = _load(max_train_examples=700)
  assert b.x_train.shape[0] == 700
  np.testing.assert_array_equal(b.x_train, a.x_train[:700])
  np.testing.assert_array_equal(b.x_val, a.x_val)


def test_augment_auto_and_cifar_via_stubbed_tfds(monkeypatch):
  assert _load(augment=True).augment is True
  rng = np.random.RandomState(0)

  def fake_tfds(name, data_dir, stream=False):
    del data_dir
    k = 100 if name == 'cifar100' else 10
    return (rng.randint(0, 256, (120, 32, 32, 3)).astype(np.uint8),
            rng.randint(0, k, 120).astype(np.int64),
            rng.randint(0, 256, (40, 32, 32, 3)).astype(np.uint8),
            rng.randint(0, k, 40).astype(np.int64), k)

  monkeypatch.setattr(sources, 'load_tfds', fake_tfds)
  d = data_lib.load_dataset('cifar10', validation_examples=20, batch_size=10)
  assert d.augment is True
  assert d.input_shape == (32, 32, 3)
  assert len(d.mean) == len(d.std) == 3
  assert d.x_train.shape[0] == 100 and d.x_val.shape[0] == 20
  d = data_lib.load_dataset('cifar100', validation_examples=20, augment=False)
  assert d.num_classes == 100 and d.augment is False


# ------------------------------------------------------------- pipelines


def test_train_dataset_types_and_options(fmnist):
  ds = data_lib.train_dataset(fmnist, seed=0)
  x, y = next(iter(ds))
  assert x.dtype == tf.float32 and y.dtype == tf.int32
  assert x.shape == (500, 28, 28, 1) and y.shape == (500,)
  assert float(tf.reduce_max(x)) > 200  # raw pixels, not normalised
  assert float(tf.reduce_min(x)) >= 0
  assert (ds.options().experimental_distribute.auto_shard_policy
          == tf.data.experimental.AutoShardPolicy.DATA)


def test_each_epoch_is_a_permutation_without_remainder():
  d = _indexed_data(n=250, batch_size=20)  # 12 steps/epoch, 10 dropped
  assert d.steps_per_epoch == 12
  batches = _take(data_lib.train_dataset(d, seed=3), 36)
  epochs = []
  for e in range(3):
    idx = np.concatenate([_indices(x) for x, _ in batches[e * 12:(e + 1) * 12]])
    assert len(idx) == 240 and len(set(idx)) == 240
    epochs.append(idx)
  assert not np.array_equal(epochs[0], epochs[1])
  # Labels travel with their images.
  for x, y in batches[:3]:
    np.testing.assert_array_equal(y, _indices(x) % 10)


@pytest.mark.parametrize('start', [1, 11, 12, 13, 30])
def test_start_step_equivalence(start):
  d = _indexed_data(n=250, batch_size=20)  # 12 steps/epoch
  ref = _take(data_lib.train_dataset(d, seed=7), start + 8)
  got = _take(data_lib.train_dataset(d, seed=7, start_step=start), 8)
  for (x0, y0), (x1, y1) in zip(ref[start:], got):
    np.testing.assert_array_equal(x0, x1)
    np.testing.assert_array_equal(y0, y1)


def test_seeds_give_different_orders_and_same_seed_same_order():
  d = _indexed_data()
  a = _indices(_take(data_lib.train_dataset(d, seed=0), 1)[0][0])
  b = _indices(_take(data_lib.train_dataset(d, seed=0), 1)[0][0])
  c = _indices(_take(data_lib.train_dataset(d, seed=1), 1)[0][0])
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_global_batch_size():
  d = _indexed_data(n=250, batch_size=20)
  x, y = _take(data_lib.train_dataset(d, seed=0, global_batch_size=50), 1)[0]
  assert x.shape[0] == 50 and y.shape == (50,)


def _cifar_like(augment, n=64, batch_size=8):
  rng = np.random.RandomState(0)
  x = rng.randint(0, 256, (n, 32, 32, 3)).astype(np.uint8)
  y = rng.randint(0, 10, n).astype(np.int64)
  return data_lib.Data(
      name='cifar10', x_train=x, y_train=y, x_val=x[:0], y_val=y[:0],
      x_test=x[:4], y_test=y[:4], num_classes=10, mean=(120.,) * 3,
      std=(60.,) * 3, batch_size=batch_size, augment=augment)


def _is_crop_or_flip(aug, orig, pad=4):
  padded = np.pad(orig, ((pad, pad), (pad, pad), (0, 0)))
  h, w = orig.shape[:2]
  for dy in range(2 * pad + 1):
    for dx in range(2 * pad + 1):
      crop = padded[dy:dy + h, dx:dx + w]
      if np.array_equal(aug, crop) or np.array_equal(aug, crop[:, ::-1]):
        return True
  return False


def test_augmentation_shapes_determinism_and_content():
  aug_d, plain_d = _cifar_like(True), _cifar_like(False)
  aug = _take(data_lib.train_dataset(aug_d, seed=5), 10)
  again = _take(data_lib.train_dataset(aug_d, seed=5, start_step=6), 4)
  plain = _take(data_lib.train_dataset(plain_d, seed=5), 10)
  for (xa, ya), (xp, yp) in zip(aug, plain):
    assert xa.shape == (8, 32, 32, 3) and xa.dtype == np.float32
    np.testing.assert_array_equal(ya, yp)  # same examples, augmented
  for (x0, _), (x1, _) in zip(aug[6:], again):
    np.testing.assert_array_equal(x0, x1)
  assert any(not np.array_equal(xa, xp) for (xa, _), (xp, _) in zip(aug, plain))
  for i in range(8):
    assert _is_crop_or_flip(aug[0][0][i], plain[0][0][i])


def test_eval_dataset_and_calibration(fmnist):
  batches = list(data_lib.eval_dataset(fmnist.x_test, fmnist.y_test,
                                       batch_size=300))
  assert [int(x.shape[0]) for x, _ in batches] == [300, 300, 300, 100]
  x = np.concatenate([b[0].numpy() for b in batches])
  y = np.concatenate([b[1].numpy() for b in batches])
  assert x.dtype == np.float32 and y.dtype == np.int32
  np.testing.assert_array_equal(x, fmnist.x_test.astype(np.float32))
  np.testing.assert_array_equal(y, fmnist.y_test)
  empty = _load(validation_examples=0)
  assert not list(data_lib.eval_dataset(empty.x_val, empty.y_val))
  cal = data_lib.calibration_images(fmnist, n=30)
  assert cal.shape == (30, 28, 28, 1) and cal.dtype == np.float32
  np.testing.assert_array_equal(cal, fmnist.x_train[:30])


# ------------------------------------------------------------- errors


def test_missing_idx_dir(tmp_path):
  with pytest.raises(ConfigError) as e:
    _load(idx_dir=str(tmp_path / 'nope'))
  assert e.value.setting == 'dataset.idx_dir'
  assert 'dataset.idx_dir' in str(e.value)
  assert 'train-images-idx3-ubyte.gz' in str(e.value)


def test_missing_idx_files(tmp_path):
  shutil.copy(os.path.join(FIXTURE, 'train-images-idx3-ubyte.gz'), tmp_path)
  with pytest.raises(ConfigError) as e:
    _load(idx_dir=str(tmp_path))
  msg = str(e.value)
  assert e.value.setting == 'dataset.idx_dir'
  assert str(tmp_path / 't10k-labels-idx1-ubyte.gz') in msg


def test_bad_idx_magic(tmp_path):
  for f in sources.IDX_FILES:
    shutil.copy(os.path.join(FIXTURE, f), tmp_path)
  with gzip.open(tmp_path / 't10k-labels-idx1-ubyte.gz', 'wb') as f:
    f.write(b'\x00\x00\x08\x03' + bytes(20))  # image magic in a label file
  with pytest.raises(ConfigError, match='dimensions') as e:
    _load(idx_dir=str(tmp_path))
  assert e.value.setting == 'dataset.idx_dir'


def test_idx_dir_only_for_mnist_like():
  with pytest.raises(ConfigError) as e:
    _load(name='cifar10')
  assert e.value.setting == 'dataset.idx_dir'


def test_unknown_name():
  with pytest.raises(ConfigError) as e:
    data_lib.load_dataset(name='imagenet')
  assert e.value.setting == 'dataset.name'
  assert 'fashion_mnist' in str(e.value)


def test_tfds_offline_error_is_fast_and_helpful(tmp_path):
  t = time.time()
  with pytest.raises(ConfigError) as e:
    data_lib.load_dataset(name='mnist', data_dir=str(tmp_path))
  assert time.time() - t < 60
  msg = str(e.value)
  assert e.value.setting == 'dataset.name'
  assert 'TFDS' in msg and 'dataset.idx_dir' in msg
  assert 'dataset.data_dir' in msg


@pytest.mark.parametrize('kw,setting', [
    (dict(validation_examples=3000), 'dataset.validation_examples'),
    (dict(validation_examples=-1), 'dataset.validation_examples'),
    (dict(max_train_examples=0), 'dataset.max_train_examples'),
    (dict(normalize='zscore'), 'dataset.normalize'),
    (dict(batch_size=0), 'dataset.batch_size'),
    (dict(batch_size=2600), 'dataset.batch_size'),
    (dict(augment='yes'), 'dataset.augment'),
])
def test_invalid_settings(kw, setting):
  with pytest.raises(ConfigError) as e:
    _load(**kw)
  assert e.value.setting == setting


def test_tfds_offline_without_data_dir_fails_within_seconds(
    tmp_path, monkeypatch, caplog):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  (tmp_path / 'mnist' / '3.0.1').mkdir(parents=True)  # what TFDS leaves
  real = tfds.builder
  monkeypatch.setattr(tfds, 'builder',
                      lambda name, **kw: real(name, data_dir=str(tmp_path)))
  monkeypatch.setitem(sources.DOWNLOAD_URLS, 'mnist',
                      'https://tf-tickets-offline.invalid/mnist/')
  t = time.time()
  with pytest.raises(ConfigError) as e:
    data_lib.load_dataset(name='mnist')
  assert time.time() - t < 20
  msg = str(e.value).splitlines()[0]  # gin appends where it was called
  assert e.value.setting == 'dataset.name'
  assert 'tf-tickets-offline.invalid cannot be reached' in msg
  assert 'dataset.idx_dir' in msg and 'dataset.data_dir' in msg
  # The clear error alone: no TFDS warning about the folder it probed.
  assert 'Variant folder' not in caplog.text


def test_idx_files_of_the_other_dataset_are_refused():
  with pytest.raises(ConfigError) as e:
    data_lib.load_dataset(name='mnist', idx_dir=FIXTURE,
                          validation_examples=500)
  assert e.value.setting == 'dataset.idx_dir'
  assert "look like 'fashion_mnist'" in str(e.value)
  data_lib.load_dataset(name='fashion_mnist', idx_dir=FIXTURE,
                        validation_examples=500)


def test_idx_source_files_are_logged(caplog):
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.INFO)
  with caplog.at_level('INFO'):
    data_lib.load_dataset(name='fashion_mnist', idx_dir=FIXTURE,
                          validation_examples=500)
  assert 'train-images-idx3-ubyte.gz' in caplog.text


@pytest.mark.parametrize('augment', [False, True])
def test_device_batches_equal_the_dataset_bitwise(augment):
  data = data_lib.load_dataset('fashion_mnist', idx_dir=FIXTURE,
                               validation_examples=500, batch_size=100,
                               augment=augment)
  spe = len(data.x_train) // 100
  batches = data_lib.DeviceBatches(data, seed=7)
  fn = tf.function(batches.batch, jit_compile=True)
  it = iter(data_lib.train_dataset(data, 7, start_step=spe - 2))
  for step in range(spe - 2, spe + 3):  # across an epoch boundary
    batches.prepare(step)
    x, y = fn(tf.constant(step, tf.int64))
    xd, yd = next(it)
    np.testing.assert_array_equal(x.numpy(), xd.numpy())
    np.testing.assert_array_equal(y.numpy(), yd.numpy())


def test_the_fixture_is_what_make_fixture_writes(tmp_path):
  """tests/data/fashion_mnist_small is the first 3000/1000 records of the
  real Fashion-MNIST, byte for byte, as tests/data/make_fixture.py writes
  it (needs the Debian package dataset-fashion-mnist)."""
  src = '/usr/share/datasets/fashion-mnist'
  if not os.path.isdir(src):
    pytest.skip('dataset-fashion-mnist is not installed')
  proc = subprocess.run(
      [sys.executable, os.path.join(cli.REPO, 'tests', 'data',
                                    'make_fixture.py'),
       '--src', src, '--dst', str(tmp_path)], capture_output=True, text=True,
      check=True)
  assert proc.stdout.count('records') == 4
  for name in sorted(os.listdir(cli.FIXTURE)):
    with open(os.path.join(cli.FIXTURE, name), 'rb') as a, open(
        tmp_path / name, 'rb') as b:
      assert a.read() == b.read(), name


def _streamed(n=250, batch_size=20, augment=False):
  """`_indexed_data` whose training set streams (a generator: no length)."""
  d = _indexed_data(n=n, batch_size=batch_size, augment=augment)
  spec = (tf.TensorSpec(d.x_train.shape[1:], tf.uint8),
          tf.TensorSpec((), tf.int64))
  stream = tf.data.Dataset.from_generator(
      lambda: zip(d.x_train, d.y_train), output_signature=spec)
  return dataclasses.replace(d, train_stream=stream, num_train=n,
                             x_train=d.x_train[:5], y_train=d.y_train[:5])


@pytest.mark.parametrize('start', [0, 11, 12, 30])
def test_a_streamed_training_set_is_deterministic_by_step(start):
  """Streamed: every epoch is a shuffle of the whole stream without its
  remainder, labels travel with their images, seeds change the order, and
  starting at step k gives the batches k, k+1, ... (resume)."""
  d = _streamed(augment=True)
  assert d.train_size == 250 and d.steps_per_epoch == 12
  ref = _take(data_lib.train_dataset(d, seed=7), start + 8)
  got = _take(data_lib.train_dataset(d, seed=7, start_step=start), 8)
  for (x0, y0), (x1, y1) in zip(ref[start:], got):
    np.testing.assert_array_equal(x0, x1)
    np.testing.assert_array_equal(y0, y1)
  plain = _streamed()
  batches = _take(data_lib.train_dataset(plain, seed=7), 24)
  for e in range(2):
    idx = np.concatenate([_indices(x) for x, _ in batches[e * 12:(e + 1) * 12]])
    assert len(idx) == 240 and len(set(idx)) == 240
  assert not np.array_equal(_indices(batches[0][0]), _indices(batches[12][0]))
  for x, y in batches[:3]:
    np.testing.assert_array_equal(y, _indices(x) % 10)
  other = _take(data_lib.train_dataset(plain, seed=8), 1)
  assert not np.array_equal(_indices(other[0][0]), _indices(batches[0][0]))


def test_a_loader_returning_datasets_streams_its_training_set(monkeypatch):
  """`dataset.loader` returning tf.data datasets: the training set streams
  (its first examples held out for validation, counted once), the test set
  and a sample are in memory, and the statistics come from the sample."""
  monkeypatch.syspath_prepend(os.path.join(cli.REPO, 'tests', 'plugins'))
  import own_models  # pylint: disable=g-import-not-at-top
  d = data_lib.load_dataset(loader=own_models.fixture_stream,
                            validation_examples=200)
  (x, y), (xt, yt) = own_models.fixture_images()
  assert d.train_stream is not None and d.num_train == 1000
  np.testing.assert_array_equal(d.x_val[..., 0], x[:200])
  np.testing.assert_array_equal(d.x_train[..., 0], x[200:])  # the sample
  np.testing.assert_array_equal(d.y_test, yt)
  assert d.num_classes == 10 and d.steps_per_epoch == 1000 // 60
  bad = lambda: (tf.data.Dataset.from_tensor_slices(
      (x[:10].astype(np.float32), y[:10])), None)
  with pytest.raises(ConfigError, match=r'dataset\.loader: .*uint8 image'):
    data_lib.load_dataset(loader=bad)
