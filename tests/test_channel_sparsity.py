"""Channel-level sparse training (issue 34): `sparse_training.
channel_sparsity`, Chase's gradual unit removal at RigL/SET mask updates,
then the compact export of the smaller network."""
import csv

import numpy as np
import pytest

import cli
import tf_tickets as tt
from tf_tickets import algorithms
from tf_tickets import data as data_lib
from tf_tickets import masks as masks_lib
from tf_tickets import models
from tf_tickets import rundir
from tf_tickets import structure
from tf_tickets.export import compact as compact_lib
from tf_tickets.keras import keras

RUN = algorithms.RunSteps(200, 50)


@pytest.fixture(scope='module')
def data():
  return data_lib.load_dataset('fashion_mnist', idx_dir=cli.FIXTURE,
                               validation_examples=500,
                               max_train_examples=600)


def cfg(**kw):
  kw.setdefault('update_every', 10)
  kw.setdefault('end_step', 100)
  kw.setdefault('drop_fraction_decay', 'constant')
  return algorithms.SparseTrainingSettings(**kw)


def units(**shapes):
  """key -> (shape, {}): weights whose units may go, read by nothing."""
  return {k: (shape, {}) for k, shape in shapes.items()}


def test_channel_schedule_is_chase_cubic_and_exact_at_the_last_update():
  """U = 8 units, S_c = 0.5, updates at g = 0, 10, ..., 90: S(g) =
  0.5 (1 - (1 - g / 90)^3), all 4 removed at the last update."""
  rigl = algorithms.RigL(cfg(channel_sparsity=0.5), {'a': 0.5, 'b': 0.5},
                         0, RUN, units=units(a=(3, 4), b=(4, 4)))
  sched = rigl.channels
  assert (sched.total, sched.first, sched.last) == (8, 0, 90)
  # Chase's minimum int(units * (1 - S_c) * beta) (beta 0.5), at least 1.
  assert sched.minimum == {'a': 1, 'b': 1}
  assert sched.alive_target(1) == 8  # g = 0: nothing removed yet
  # g = 30: 0.5 * (1 - (2/3)^3) * 8 = 2.81 -> 3 removed.
  assert sched.alive_target(31) == 5
  assert sched.alive_target(91) == 4
  odd = algorithms.RigL(cfg(channel_sparsity=0.75, end_step=95),
                        {'a': 0.5}, 0, RUN, units=units(a=(3, 40)))
  assert odd.channels.last == 90
  assert odd.channels.minimum == {'a': 5}  # int(40 * 0.25 * 0.5)
  tiny = algorithms.RigL(cfg(channel_sparsity=0.9), {'a': 0.5}, 0, RUN,
                         units=units(a=(3, 3)))
  assert tiny.channels.minimum == {'a': 1}  # int(0.15) = 0 -> 1
  # Without channel sparsity `make` gives the method no units at all.
  plain = algorithms.make(cfg(), {'a': 0.5}, 0, RUN, {'a': (3, 4)},
                          units={'a': []})
  assert plain.channels is None and plain.units == {}


def test_remove_units_ranks_globally_and_respects_minimums():
  scores = {'a': np.array([0.1, 0.5, 0.2]), 'b': np.array([0.05, 0.3])}
  alive = {'a': np.ones(3, bool), 'b': np.ones(2, bool)}
  out = structure.remove_units(scores, alive, {'a': 1, 'b': 1}, 3)
  assert {k: v.tolist() for k, v in out.items()} == {'a': [0, 2], 'b': [0]}
  # b at its minimum: a gives what it can (down to 1), fewer are removed.
  out = structure.remove_units(scores, alive, {'a': 1, 'b': 2}, 3)
  assert {k: v.tolist() for k, v in out.items()} == {'a': [0, 2], 'b': []}
  # Dead units are not candidates; ties go by weight order, then index.
  tied = {'a': np.zeros(3), 'b': np.zeros(2)}
  alive['a'][0] = False
  out = structure.remove_units(tied, alive, {'a': 0, 'b': 0}, 2)
  assert {k: v.tolist() for k, v in out.items()} == {'a': [1, 2], 'b': []}


def test_unit_entries_of_conv_kernels_and_their_readers():
  """Units are the last axis of a (kh, kw, in, out) kernel; a reader's
  input i reads unit i % units (a Flatten of channels-last)."""
  kernel = np.arange(2 * 2 * 3 * 4).reshape(2, 2, 3, 4)
  dead = np.array([False, True, False, True])
  flagged = structure.entries_of_units(kernel.shape, dead).reshape(
      kernel.shape)
  np.testing.assert_array_equal(flagged, np.broadcast_to(dead, kernel.shape))
  mask = np.ones(kernel.shape)
  mask[..., 1] = 0
  np.testing.assert_array_equal(
      structure.mean_magnitude(kernel, mask),
      np.abs(kernel * mask).reshape(-1, 4).sum(0) / 12)
  reader = structure.entries_reading((8, 5), dead).reshape(8, 5)
  np.testing.assert_array_equal(reader[:, 0], [0, 1, 0, 1, 0, 1, 0, 1])
  assert reader.all(axis=1).sum() == 4
  conv_reader = structure.entries_reading((3, 3, 4, 6), dead).reshape(
      3, 3, 4, 6)
  np.testing.assert_array_equal(conv_reader[1, 2, :, 5], dead)


def test_rigl_removes_the_unit_of_least_mean_magnitude_by_hand():
  """3 units of 2 entries; updates at g = 0 and 10, so the second removes
  round(0.34 * 3) = 1 unit. Unit 1 has the least unmasked mean magnitude
  (0.05): its entry is freed; RigL drops floor(0.5 * 3) = 1 more (0.2)
  and grows 2 where the gradient is largest among the alive units' free
  entries: the count stays 4, unit 1 is empty. The reader 'r' loses its
  row of unit 1 and regrows it among the rows of alive units."""
  rigl = algorithms.RigL(cfg(channel_sparsity=0.34, end_step=11,
                             drop_fraction=0.5), {'a': 1 / 3, 'r': 0.5},
                         0, RUN, units={'a': ((2, 3), {'r': (3, 2)})})
  mask = np.array([[1, 1, 0], [1, 0, 1]], bool).reshape(-1)
  weight = np.array([[0.9, 0.1, 0.0], [0.8, 0.0, 0.2]]).reshape(-1)
  grad = np.array([[0.0, 9.0, 0.5], [0.0, 9.0, 0.4]]).reshape(-1)
  r_mask = np.array([[1, 0], [1, 1], [0, 0]], bool).reshape(-1)
  r_weight = np.array([[0.5, 0], [0.9, 0.8], [0, 0]]).reshape(-1)
  r_grad = np.array([[0, 3.0], [9, 9], [1.0, 2.0]]).reshape(-1)
  args = ({'a': mask, 'r': r_mask}, {'a': weight, 'r': r_weight},
          {'a': grad, 'r': r_grad})
  first = rigl.update(1, *args)
  assert first.stats['a']['units_removed'] == 0
  assert first.stats['a']['units_alive'] == 3
  update = rigl.update(11, *args)
  new = update.masks['a'].reshape(2, 3)
  np.testing.assert_array_equal(new, [[1, 0, 1], [1, 0, 1]])
  s = update.stats['a']
  assert (s['units_removed'], s['units_alive']) == (1, 2)
  assert (s['dropped'], s['grown'], s['regrown']) == (2, 2, 1)
  # 'r': row 1 (unit 1) freed (2 entries), then its drop of floor(0.5 * 1)
  # = 0; 2 grown where |g| is largest among rows 0 and 2: (2, 1), (0, 1).
  np.testing.assert_array_equal(update.masks['r'].reshape(3, 2),
                                [[1, 1], [0, 0], [0, 1]])
  assert update.stats['r']['dropped'] == 2
  # A unit with no active entry never comes back, however large its
  # gradient (at g = 0, before any removal too).
  sparse = np.array([[1, 0, 0], [0, 0, 1]], bool).reshape(-1)
  again = rigl.update(1, {'a': sparse, 'r': r_mask},
                      {'a': weight * sparse, 'r': r_weight},
                      {'a': grad, 'r': r_grad})
  after = again.masks['a'].reshape(2, 3)
  assert not after[:, 1].any() and int(after.sum()) == 2
  assert again.stats['a']['dropped'] == 1
  # ... and the reader's rows of that unit stay empty too.
  assert not again.masks['r'].reshape(3, 2)[1].any()


def test_an_alive_unit_emptied_by_the_drop_regrows_its_best_entry_first():
  """Unit 0's only weight is the smallest and is dropped (k = floor(0.5 *
  3) = 1). Plain RigL grows where |g| is largest, in unit 1, and leaves
  unit 0 empty; with channel sparsity unit 0 gets its best free entry
  back first, so the alive units are the schedule's and the count stays."""
  mask = np.array([[1, 1, 1], [0, 0, 0]], bool).reshape(-1)
  weight = np.array([[0.1, 0.9, 0.8], [0, 0, 0]]).reshape(-1)
  grad = np.array([[0.0, 0.0, 0.0], [0.3, 5.0, 4.0]]).reshape(-1)
  arrays = ({'a': mask}, {'a': weight}, {'a': grad})
  plain = algorithms.RigL(cfg(drop_fraction=0.5), {'a': 0.5}, 0, RUN)
  np.testing.assert_array_equal(
      plain.update(1, *arrays).masks['a'].reshape(2, 3),
      [[0, 1, 1], [0, 1, 0]])
  chase = algorithms.RigL(cfg(channel_sparsity=0.01, drop_fraction=0.5),
                          {'a': 0.5}, 0, RUN, units=units(a=(2, 3)))
  np.testing.assert_array_equal(
      chase.update(1, *arrays).masks['a'].reshape(2, 3),
      [[0, 1, 1], [1, 0, 0]])


def test_unit_readers_follow_per_channel_layers_only():
  L = keras.layers
  inputs = keras.Input((8, 8, 2))
  h = L.Conv2D(4, 3, padding='same', name='c1')(inputs)
  h = L.MaxPooling2D()(L.ReLU()(L.BatchNormalization()(h)))
  c2 = L.Conv2D(4, 3, padding='same', name='c2')(h)
  h = L.Flatten()(L.Add()([h, c2]))  # c2 feeds an Add: not followed
  h = L.Dense(6, activation='relu', name='d1')(h)
  model = tt.wrap(keras.Model(inputs, L.Dense(3, name='out')(h)))
  assert masks_lib.unit_readers(model) == {'c1': ['c2'], 'c2': [],
                                           'd1': ['out']}
  # A Sequential conv -> pool -> Flatten -> Dense.
  seq = tt.wrap(keras.Sequential([
      keras.Input((6, 6, 1)), L.Conv2D(4, 3, name='c'), L.MaxPooling2D(),
      L.Flatten(), L.Dense(5, name='d'), L.Dense(2, name='o')]))
  assert masks_lib.unit_readers(seq) == {'c': ['d'], 'd': ['o']}
  # A shared ReLU: each call's readers only.
  inputs = keras.Input((6,))
  relu = L.ReLU()
  a = relu(L.Dense(4, name='a')(inputs))
  b = relu(L.Dense(4, name='b')(inputs))
  h = L.Add()([L.Dense(3, name='xa')(a), L.Dense(3, name='yb')(b)])
  shared = tt.wrap(keras.Model(inputs, L.Dense(2, name='o')(h)))
  assert masks_lib.unit_readers(shared) == {
      'a': ['xa'], 'b': ['yb'], 'xa': [], 'yb': []}


@pytest.mark.parametrize('kw, match', [
    (dict(channel_sparsity=1.0), r'out of range; valid: \[0.0, 1.0\)'),
    (dict(channel_sparsity=0.5, channel_min_fraction=0.0),
     'channel_min_fraction'),
    (dict(channel_sparsity=0.5, block_size=16), 'cannot be combined'),
])
def test_bad_channel_settings_name_the_setting(kw, match):
  with pytest.raises(tt.ConfigError, match=match) as e:
    algorithms.SparseTrainingSettings(**kw)
  assert str(e.value).startswith('sparse_training.channel_')


@pytest.mark.parametrize('method', ['static', 'snip', 'gmp'])
def test_channel_sparsity_needs_a_drop_and_grow_method(method):
  with pytest.raises(tt.ConfigError, match='drop-and-grow') as e:
    cfg(method=method, channel_sparsity=0.5)
  assert str(e.value).startswith('sparse_training.channel_sparsity')
  with pytest.raises(tt.ConfigError, match='no layer whose units'):
    algorithms.make(cfg(channel_sparsity=0.5), {'a': 0.5}, 0, RUN,
                    {'a': (3, 4)}, units={})


# -- end to end ----------------------------------------------------------------


def test_rigl_with_channel_sparsity_in_model_fit(data):
  """From `model.fit`: the hidden layers lose half their 400 units by the
  last update (global steps 0, 10, 20), the output layer none, and every
  layer keeps its exact count where it has room."""
  model = tt.wrap(models.build_for(data, seed=0))
  model.compile(keras.optimizers.Adam(1e-3),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  chase = tt.callbacks.SparseTraining(
      method='rigl', sparsity=0.9, update_every=10, end_step=0.75,
      channel_sparsity=0.5, data=data_lib.train_dataset(data, 1))
  before = None

  class Counts(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
      nonlocal before
      before = {k: int(np.count_nonzero(m))
                for k, m in masks_lib.get_masks(self.model).items()}

  model.fit(data_lib.train_dataset(data, 0), epochs=1, steps_per_epoch=40,
            verbose=0, callbacks=[chase, Counts()])
  masks = masks_lib.get_masks(model)
  alive = {k: int(structure.alive_units(m).sum()) for k, m in masks.items()}
  assert alive['fc1'] + alive['fc2'] == 200 and alive['output'] == 10
  assert alive['fc1'] >= 75 and alive['fc2'] >= 25  # Chase's minimums
  # Nothing reads a removed unit: its rows in the next layer are free.
  assert not masks['fc2'][~structure.alive_units(masks['fc1'])].any()
  assert not masks['output'][~structure.alive_units(masks['fc2'])].any()
  # Exact counts; the dense output layer has room for the rows of its
  # alive inputs only (its freed rows cannot regrow).
  before['output'] = 10 * alive['fc2']
  assert {k: int(np.count_nonzero(m)) for k, m in masks.items()} == before
  assert chase.result['channel_sparsity'] == 0.5


def test_cli_channel_sparse_training_exports_the_smaller_network(tmp_path):
  """RigL with channel_sparsity 0.5 from the command line: exact counts
  but the output rows of removed units, and a compact network with the
  200 hidden units the masks keep, equal to the masked one."""
  out = tmp_path / 'run'
  proc = cli.train(('gin/lenet_rigl.gin',), (
      'training.steps = 40', 'training.eval_every = 40',
      'sparse_training.update_every = 10', 'dataset.max_train_examples = 600',
      'sparse_training.channel_sparsity = 0.5'),
                   f'--output_dir={out}', '--quiet')
  assert proc.returncode == 0, proc.stderr[-2000:]
  with open(out / 'results.csv') as f:
    (row,) = list(csv.DictReader(f))
  assert float(row['channel_sparsity']) == 0.5
  model = tt.wrap(models.build_for(data_lib.load_dataset(
      'fashion_mnist', idx_dir=cli.FIXTURE, validation_examples=500)))
  rundir.load_weights(model, rundir.final_dir(rundir.level_dir(str(out), 0)))
  alive = {k: int(structure.alive_units(m).sum())
           for k, m in masks_lib.get_masks(model).items()}
  assert alive['fc1'] + alive['fc2'] == 200
  # 90% ERK (output layer dense) less the output rows of removed units.
  lost = 10 * (100 - alive['fc2'])
  assert int(row['active_weights']) == 26620 - lost
  # The smaller network (the export's `--compact`, tested end to end on a
  # lottery run in test_compact.py): 200 hidden units, equal to the masked.
  x = np.random.default_rng(0).normal(
      size=(64,) + tuple(model.input_shape[1:])).astype(np.float32)
  smaller, report = compact_lib.compact_model(model, x[:32])
  widths = {k: r['width_after'] for k, r in report['layers'].items()}
  assert widths == {'fc1': alive['fc1'], 'fc2': alive['fc2'], 'output': 10}
  masked = np.asarray(model(x, training=False))
  assert np.max(np.abs(np.asarray(smaller(x, training=False)) - masked)) <= (
      1e-5 * np.max(np.abs(masked)))


def test_cli_channel_sparsity_with_static_is_one_error_line(tmp_path):
  proc = cli.train(('gin/lenet_rigl.gin',), (
      "sparse_training.method = 'static'",
      'sparse_training.channel_sparsity = 0.5'),
      f'--output_dir={tmp_path / "run"}')
  assert proc.returncode == 1
  assert cli.last_line(proc).startswith(
      'error: sparse_training.channel_sparsity: ')
  assert not (tmp_path / 'run').exists()
