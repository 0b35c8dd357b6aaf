"""Channel-level sparse training (issue 34): `sparse_training.
channel_sparsity`, Chase's gradual unit removal at RigL/SET mask updates,
then the compact export of the smaller network."""
import csv
import json

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


def test_channel_schedule_is_chase_cubic_and_exact_at_the_last_update():
  """U = 8 units, S_c = 0.5, updates at g = 0, 10, ..., 90: S(g) =
  0.5 (1 - (1 - g / 90)^3), all 4 removed at the last update."""
  rigl = algorithms.RigL(cfg(channel_sparsity=0.5), {'a': 0.5, 'b': 0.5},
                         0, RUN, units={'a': (3, 4), 'b': (4, 4)})
  sched = rigl.channels
  assert (sched.total, sched.first, sched.last) == (8, 0, 90)
  # Chase's minimum: int(units * (1 - S_c) * beta), beta 0.5; at least 1.
  assert sched.minimum == {'a': 1, 'b': 1}
  assert sched.alive_target(1) == 8  # g = 0: nothing removed yet
  # g = 30: 0.5 * (1 - (2/3)^3) * 8 = 2.81 -> 3 removed.
  assert sched.alive_target(31) == 5
  assert sched.alive_target(91) == 4
  wide = algorithms.RigL(cfg(channel_sparsity=0.5), {'a': 0.5}, 0, RUN,
                         units={'a': (3, 40)})
  assert wide.channels.minimum == {'a': 10}
  assert algorithms.RigL(cfg(), {'a': 0.5}, 0, RUN,
                         units={'a': (3, 4)}).channels is None


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


def test_rigl_removes_the_unit_of_least_mean_magnitude_by_hand():
  """3 units of 2 entries; updates at g = 0 and 10, so the second removes
  round(0.34 * 3) = 1 unit. Unit 1 has the least unmasked mean magnitude
  (0.05): its entry is freed; RigL drops floor(0.5 * 3) = 1 more (0.2)
  and grows 2 where the gradient is largest among the alive units' free
  entries: the count stays 4, unit 1 is empty."""
  rigl = algorithms.RigL(cfg(channel_sparsity=0.34, end_step=11,
                             drop_fraction=0.5), {'a': 1 / 3}, 0, RUN,
                         units={'a': (2, 3)})
  mask = np.array([[1, 1, 0], [1, 0, 1]], bool).reshape(-1)
  weight = np.array([[0.9, 0.1, 0.0], [0.8, 0.0, 0.2]]).reshape(-1)
  grad = np.array([[0.0, 9.0, 0.5], [0.0, 9.0, 0.4]]).reshape(-1)
  first = rigl.update(1, {'a': mask}, {'a': weight}, {'a': grad})
  assert first.stats['a']['units_removed'] == 0
  assert first.stats['a']['units_alive'] == 3
  update = rigl.update(11, {'a': mask}, {'a': weight}, {'a': grad})
  new = update.masks['a'].reshape(2, 3)
  np.testing.assert_array_equal(new, [[1, 0, 1], [1, 0, 1]])
  s = update.stats['a']
  assert (s['units_removed'], s['units_alive']) == (1, 2)
  assert (s['dropped'], s['grown'], s['regrown']) == (2, 2, 1)
  # A unit with no active entry never comes back, however large its
  # gradient (at g = 0, before any removal too).
  sparse = np.array([[1, 0, 0], [0, 0, 1]], bool).reshape(-1)
  again = rigl.update(1, {'a': sparse}, {'a': weight * sparse}, {'a': grad})
  after = again.masks['a'].reshape(2, 3)
  assert not after[:, 1].any() and int(after.sum()) == 2
  assert again.stats['a']['dropped'] == 1


def test_without_channel_sparsity_rigl_is_unchanged():
  """channel_sparsity 0 (the default) gives the masks of plain RigL, even
  with the units given, and an empty unit may be regrown."""
  rng = np.random.default_rng(0)
  mask = rng.random(24) < 0.5
  mask[[2, 6, 10, 14, 18, 22]] = False  # unit 2 of (6, 4) is empty
  weight, grad = rng.normal(size=24) * mask, rng.normal(size=24)
  grad[2] = 99.0
  plain = algorithms.RigL(cfg(drop_fraction=0.5), {'a': 0.5}, 0, RUN)
  with_units = algorithms.RigL(cfg(drop_fraction=0.5), {'a': 0.5}, 0, RUN,
                               units={'a': (6, 4)})
  a = plain.update(1, {'a': mask}, {'a': weight}, {'a': grad})
  b = with_units.update(1, {'a': mask}, {'a': weight}, {'a': grad})
  np.testing.assert_array_equal(a.masks['a'], b.masks['a'])
  assert a.masks['a'][2]


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
                    {'a': (3, 4)})


# -- end to end ----------------------------------------------------------------


def test_rigl_with_channel_sparsity_in_model_fit(data):
  """From `model.fit`: the hidden layers lose half their 400 units by the
  last update (global steps 0, 10, 20), the output layer none, and every
  layer keeps its exact count."""
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
  assert {k: int(np.count_nonzero(m)) for k, m in masks.items()} == before
  assert chase.result['channel_sparsity'] == 0.5


def test_cli_channel_sparse_training_exports_the_smaller_network(tmp_path):
  """RigL with channel_sparsity 0.5 from the command line, then `--compact`:
  the exported network has the 200 hidden units the masks keep, equal to
  the masked one."""
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
  assert float(row['density']) == pytest.approx(0.1, abs=1e-4)
  model = tt.wrap(models.build_for(data_lib.load_dataset(
      'fashion_mnist', idx_dir=cli.FIXTURE, validation_examples=500)))
  rundir.load_weights(model, rundir.final_dir(rundir.level_dir(str(out), 0)))
  alive = {k: int(structure.alive_units(m).sum())
           for k, m in masks_lib.get_masks(model).items()}
  assert alive['fc1'] + alive['fc2'] == 200
  proc = cli.run('tf_tickets.export', (), (), f'--run_dir={out}',
                 '--compact', '--quiet', timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out / 'export' / 'level_0' / 'report.json') as f:
    compact = json.load(f)['compact']
  assert compact['parity']['max_rel'] <= 1e-5
  widths = {k: r['width_after'] for k, r in compact['layers'].items()}
  assert widths == {'fc1': alive['fc1'], 'fc2': alive['fc2'], 'output': 10}


def test_cli_channel_sparsity_with_static_is_one_error_line(tmp_path):
  proc = cli.train(('gin/lenet_rigl.gin',), (
      "sparse_training.method = 'static'",
      'sparse_training.channel_sparsity = 0.5'),
      f'--output_dir={tmp_path / "run"}')
  assert proc.returncode == 1
  assert cli.last_line(proc).startswith(
      'error: sparse_training.channel_sparsity: ')
  assert not (tmp_path / 'run').exists()
