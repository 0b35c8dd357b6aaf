"""Algorithms on hand-written arrays, and the registries: adding a method,
a pruning criterion or a branch is one class plus one registry line."""
import os

import numpy as np
import pytest

import cli
import tf_tickets as tt
from tf_tickets import algorithms
from tf_tickets import experiments
from tf_tickets import masks as masks_lib
from tf_tickets import rundir
from tf_tickets.experiments import lottery


def cfg(**kw):
  kw.setdefault('update_every', 10)
  kw.setdefault('end_step', 100)
  kw.setdefault('drop_fraction_decay', 'constant')
  return algorithms.SparseTrainingSettings(**kw)


RUN = algorithms.RunSteps(200, 50)


def test_rigl_update_by_hand():
  """Drop the 2 smallest |w| of 4 active, grow the 2 largest |g| among the
  inactive after the drop (a just-dropped one may come back)."""
  mask = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
  w = np.array([0.1, -0.9, 0.05, 0.5, 0, 0, 0, 0], np.float32)
  g = np.array([0.0, 0.0, 9.0, 0.0, 1.0, 3.0, 0.2, 2.0], np.float32)
  rigl = algorithms.RigL(cfg(drop_fraction=0.5), {'a': 0.5}, 0, RUN)
  # rigl's phase: global steps 0, 10, ... are steps 1, 11, ...
  assert rigl.wants_update(11) and not rigl.wants_update(10)
  up = rigl.update(11, {'a': mask}, {'a': w}, {'a': g})
  # dropped: 2 (0.05) and 0 (0.1); grown: 2 (|g| 9, regrown) and 5 (3.0)
  np.testing.assert_array_equal(up.masks['a'], [0, 1, 1, 1, 0, 1, 0, 0])
  np.testing.assert_array_equal(np.flatnonzero(up.grown['a']), [2, 5])
  assert up.stats['a'] == dict(dropped=2, grown=2, regrown=1, active=4,
                               drop_fraction=0.5)


def test_set_update_by_hand_counts_and_determinism():
  mask = np.array([1, 1, 1, 0, 0, 0], bool)
  w = np.array([3.0, 1.0, 2.0, 0, 0, 0], np.float32)
  alg = algorithms.SET(cfg(drop_fraction=0.34), {'a': 0.5}, 7, RUN)
  up = alg.update(10, {'a': mask}, {'a': w}, None)
  new = up.masks['a']
  grown, = np.flatnonzero(up.grown['a'])  # round(0.34 * 3) = 1 drop, 1 grow
  assert grown in (1, 3, 4, 5)  # inactive after dropping entry 1 (|w| = 1)
  assert new.sum() == 3 and new[0] and new[2] and new[grown]
  assert up.stats['a']['regrown'] == int(grown == 1)
  again = alg.update(10, {'a': mask}, {'a': w}, None)
  np.testing.assert_array_equal(new, again.masks['a'])


def test_gmp_update_by_hand():
  gmp = algorithms.GMP(cfg(method='gmp'), {'a': 0.5, 'b': 0.0}, 0, RUN,
                       gmp=algorithms.GMPSettings(begin_step=10, end_step=20,
                                                  frequency=10))
  mask = np.ones(6, bool)
  w = np.array([0.3, -0.1, 0.2, 0.6, -0.05, 0.4], np.float32)
  assert gmp.wants_update(20) and not gmp.wants_update(25)
  up = gmp.update(20, {'a': mask, 'b': mask}, {'a': w, 'b': w}, None)
  np.testing.assert_array_equal(up.masks['a'], [1, 0, 0, 1, 0, 1])
  assert 'b' not in up.masks  # target 0: never pruned
  assert up.stats['a']['dropped'] == 3 and up.grown == {}


def test_static_never_updates():
  static = algorithms.Static(cfg(method='static'), {}, 0, RUN)
  assert not any(static.wants_update(s) for s in range(200))


def test_imp_global_and_layerwise_by_hand():
  from tf_tickets import keras  # pylint: disable=g-import-not-at-top
  inp = keras.Input((2,))
  out = keras.layers.Dense(2, use_bias=False, name='b')(
      keras.layers.Dense(2, use_bias=False, name='a')(inp))
  model = tt.wrap(keras.Model(inp, out))
  model.get_layer('ticket_a').layer.kernel.assign([[1., 2.], [3., 4.]])
  model.get_layer('ticket_b').layer.kernel.assign([[.1, .2], [5., 6.]])
  tt.pruning.prune(model, 0.5, scope='global')
  m = masks_lib.get_masks(model)
  np.testing.assert_array_equal(m['a'], [[0, 0], [1, 1]])
  np.testing.assert_array_equal(m['b'], [[0, 0], [1, 1]])
  tt.pruning.prune(model, 0.5, scope='layerwise')
  m = masks_lib.get_masks(model)
  np.testing.assert_array_equal(m['a'], [[0, 0], [0, 1]])
  np.testing.assert_array_equal(m['b'], [[0, 0], [0, 1]])


def test_registries_name_the_setting_and_the_valid_names():
  with pytest.raises(tt.ConfigError, match=r"sparse_training\.method.*'rigl'"):
    algorithms.METHODS.get('nope')
  with pytest.raises(tt.ConfigError, match=r"lottery\.criterion.*magnitude"):
    lottery.LotterySettings(criterion='nope')
  with pytest.raises(tt.ConfigError, match=r"lottery\.branch.*random_reinit"):
    lottery.LotterySettings(branch='nope')
  with pytest.raises(tt.ConfigError, match=r"experiment\.kind.*dense"):
    experiments.ExperimentSettings(kind='nope')


# -- adding an algorithm, a criterion and a branch ------------------------------


class GrowFirst(algorithms.DynamicSparse):
  """A toy method: grow the lowest-index inactive connections."""

  def grow_scores(self, key, index, step, weight, grad):
    return -np.arange(weight.size, dtype=np.float64)


class SmallestInit(algorithms.Criterion):
  """A toy criterion: prune where |theta_0| is smallest."""

  def scores(self, weight, initial):
    return np.abs(initial)


class KeepTicket(lottery.Branch):
  """A toy branch: the ticket's own start (must equal the ticket)."""

  def prepare(self, ctx, model, cfg_, level):
    rundir.load_weights(model, rundir.start_dir(
        rundir.level_dir(ctx.run_dir, level)))


@pytest.fixture
def registered():
  algorithms.METHODS.register('grow_first')(GrowFirst)
  algorithms.CRITERIA.register('smallest_init')(SmallestInit)
  lottery.BRANCHES.register('keep_ticket')(KeepTicket)
  yield
  algorithms.METHODS.unregister('grow_first')
  algorithms.CRITERIA.unregister('smallest_init')
  lottery.BRANCHES.unregister('keep_ticket')


def _run(run_dir, gin_file, *params):
  run_settings = cli.settings(
      [os.path.join(cli.REPO, 'gin', gin_file)],
      list(cli.FIXTURE_PARAMS) + ['training.steps = 20',
                                  'training.eval_every = 20',
                                  'dataset.max_train_examples = 600',
                                  'summaries.enabled = False'] + list(params))
  return experiments.run(str(run_dir), run_settings, quiet=True)


def test_a_registered_method_runs_end_to_end(registered, tmp_path):
  rows = _run(tmp_path, 'lenet_rigl.gin', "sparse_training.method = "
              "'grow_first'", 'sparse_training.update_every = 5')
  row = rows[0]
  # global steps 0, 5, 10 < 15
  assert row['method'] == 'grow_first' and row['mask_updates'] == 3
  assert row['grown_connections'] > 0
  assert row['density'] == pytest.approx(0.1, abs=1e-4)


def test_a_registered_criterion_and_branch_run_end_to_end(registered,
                                                          tmp_path):
  rows = _run(tmp_path, 'lenet_imp.gin', 'lottery.levels = 1',
              "lottery.criterion = 'smallest_init'",
              "lottery.branch = 'keep_ticket'")
  assert [(r['branch'], r['level']) for r in rows] == [
      ('lottery', 0), ('lottery', 1), ('keep_ticket', 1)]
  # The criterion pruned by |theta_0|: the kept fc1 entries are the 80%
  # largest |theta_0|.
  model = experiments.context(
      str(tmp_path), cli.settings((), cli.FIXTURE_PARAMS)).build_model()
  rundir.load_weights(model, rundir.start_dir(rundir.level_dir(tmp_path, 1)))
  m = masks_lib.get_masks(model)['fc1'] > 0
  theta0 = np.abs(masks_lib.get_weights(model, 'initial')['fc1'])
  assert theta0[m].min() >= theta0[~m].max()
  # The toy branch starts where the ticket starts, so it trains the same.
  assert rows[2]['test_accuracy'] == rows[1]['test_accuracy']


def test_snip_from_gin_end_to_end(tmp_path):
  rows = _run(tmp_path, 'lenet_rigl.gin', "sparse_training.method = 'snip'")
  row = rows[0]
  assert row['method'] == 'snip' and row['mask_updates'] == 0
  assert row['density'] == pytest.approx(0.1, abs=1e-4)


def _scanned(algorithm, step, horizon=400):
  return next((s for s in range(step + 1, step + horizon)
               if algorithm.wants_update(s)), None)


@pytest.mark.parametrize('method,settings', [
    ('rigl', dict(update_every=7, end_step=150)),
    ('set', dict(update_every=50, end_step=0.75)),
    ('static', {}),
    ('gmp', dict(begin_step=13, end_step=160, frequency=9)),
    ('gmp', dict(begin_step=0, end_step=100, frequency=100)),
])
def test_next_update_is_the_first_step_that_wants_one(method, settings):
  """Schedules say their next update directly; it is the step a scan of
  `wants_update` finds (the loop plans its compiled calls on it)."""
  gmp = None
  if method == 'gmp':
    gmp = algorithms.GMPSettings(**settings)
    settings = {}
  algorithm = algorithms.METHODS.get(method)(
      cfg(method=method, **settings), {'a': 0.9, 'b': 0.5}, 0, RUN,
      **({'gmp': gmp} if gmp else {}))
  for step in range(0, 200):
    assert algorithm.next_update(step) == _scanned(algorithm, step), step


def test_gmp_schedule_equals_tfmots_polynomial_decay():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_model_optimization as tfmot  # pylint: disable=g-import-not-at-top
  from tf_tickets.algorithms.gmp import Polynomial  # pylint: disable=g-import-not-at-top
  for initial, final, begin, end, power, freq in (
      (0.0, 0.9, 100, 2000, 3, 100), (0.2, 0.98, 0, 997, 2.5, 7),
      (0.5, 0.5, 10, 20, 1, 1)):
    ours = Polynomial(initial, final, begin, end, power, freq)
    ref = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=initial, final_sparsity=final, begin_step=begin,
        end_step=end, power=power, frequency=freq)
    for step in list(range(0, end + 50, 3)) + [begin, end]:
      should, sparsity = ref(tf.constant(step, tf.int64))
      mine = ours(step)
      assert mine[0] == bool(should), step
      # float32 both; numpy's and TensorFlow's pow may differ in one ulp.
      assert abs(mine[1] - float(sparsity)) <= 2.5e-7, step
      # What GMP prunes to: the same kept count for LeNet's fc1.
      assert round((1 - mine[1]) * 235200) == round(
          (1 - float(sparsity)) * 235200), step


def test_imp_on_arrays_is_what_prune_writes_into_the_model():
  """`compute_masks` is the IMP step on plain arrays; `prune` only reads
  and writes the model around it (inputs are left unchanged)."""
  import tf_tickets as tt  # pylint: disable=g-import-not-at-top
  from tf_tickets import masks as masks_lib  # pylint: disable=g-import-not-at-top
  from tf_tickets import models  # pylint: disable=g-import-not-at-top
  for scope, block in (('global', None), ('layerwise', (16, 1))):
    net = tt.wrap(models.build_model('lenet_300_100', input_shape=(8, 8, 1),
                                     num_classes=10, seed=3))
    before = masks_lib.get_masks(net)
    weights = masks_lib.get_weights(net)
    initial = masks_lib.get_weights(net, 'initial')
    copies = {k: m.copy() for k, m in before.items()}
    pure = algorithms.compute_masks(before, weights, initial, 0.2, scope,
                                    {'output': 0.1}, (), 'magnitude', block)
    assert all(np.array_equal(before[k], copies[k]) for k in before)
    pruned = tt.pruning.prune(net, 0.2, scope, {'output': 0.1}, (),
                              'magnitude', block)
    after = masks_lib.get_masks(net)
    for k in before:
      np.testing.assert_array_equal(pure[k], after[k])
      assert pruned[k] == before[k].sum() - pure[k].sum()
    if block is None:  # the output layer at its own rate
      assert pure['output'].sum() == before['output'].sum() - 100
