"""Dynamic sparse training: RigL, SET, static, GMP on the one training loop."""
import csv
import math
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot

import cli
import tf_tickets as tt
from tf_tickets import data as data_lib
from tf_tickets import distributions
from tf_tickets import keras
from tf_tickets import models
from tf_tickets import algorithms
from tf_tickets import masks as pruning
from tf_tickets import topk
from tf_tickets import training
from tf_tickets import wrapper as wrapper_lib

GIN_DIR = os.path.join(cli.REPO, 'gin')
STEPS = 80
# rigl's phase: updates at global steps 0, 10, ..., 50 (steps 1, 11, ...,
# 51); T_end = 60 (0.75 of 80) is excluded.
UPDATES = [1, 11, 21, 31, 41, 51]


# -- helpers ----------------------------------------------------------------------


@pytest.fixture(scope='module')
def data():
  return data_lib.load_dataset('fashion_mnist', idx_dir=cli.FIXTURE,
                               validation_examples=500)


def build(data, strategy=None, seed=0):
  strategy = strategy or tf.distribute.get_strategy()
  with strategy.scope():
    return tt.wrap(models.build_for(data, seed=seed))


def sparse_cfg(**kw):
  kw.setdefault('update_every', 10)
  return algorithms.SparseTrainingSettings(**kw)


def make_algorithm(model, cfg, data, steps=STEPS, seed=0, gmp=None):
  """The algorithm of `cfg` for a run of `steps` on `data`."""
  run = algorithms.RunSteps(steps, data.steps_per_epoch)
  extra = dict(gmp=gmp) if cfg.method == 'gmp' and gmp else {}
  return algorithms.make(cfg, tt.pruning.target_sparsities(model, cfg), seed,
                         run, pruning.weight_shapes(model),
                         units=pruning.unit_readers(model), **extra)


class Recorder(training.Hook):
  """Checks the invariants at every step and every mask update."""

  def __init__(self):
    self.updates = []

  def begin(self, ctx):
    self.prev = pruning.get_masks(ctx.model)
    self.first = {k: int(m.sum()) for k, m in self.prev.items()}

  def after_step(self, ctx, step, grads):
    for key, (wr, i) in wrapper_lib.prunable_entries(ctx.model).items():
      w, m = wr.prunable_weights[i].numpy(), wr.masks[i].numpy()
      assert np.count_nonzero(w) <= np.count_nonzero(m), (key, step)
      assert np.all(w[m == 0] == 0.0), (key, step)

  def on_mask_update(self, ctx, step, stats, totals=None):
    masks = pruning.get_masks(ctx.model)
    entries = wrapper_lib.prunable_entries(ctx.model)
    grown = {}
    for key, (wr, i) in entries.items():
      new = (masks[key] > 0) & (self.prev[key] == 0)
      var = wr.prunable_weights[i]
      assert np.all(var.numpy()[new] == 0.0), (key, step)
      slots = training.optimizer_slots(ctx.optimizer, var)
      for slot in slots:
        assert np.all(slot.numpy()[new] == 0.0), (key, step, slot.name)
      grown[key] = int(new.sum())
    self.updates.append(dict(
        step=step, stats={k: dict(v) for k, v in stats.items()}, grown=grown,
        active={k: int(m.sum()) for k, m in masks.items()},
        slots=len(training.optimizer_slots(ctx.optimizer,
                                     entries['fc1'][0].prunable_weights[0]))))
    self.prev = masks


class Kill(training.Hook):
  def __init__(self, step):
    self.step = step

  def after_step(self, ctx, step, grads):
    if step == self.step:
      raise KeyboardInterrupt('simulated kill')


def train(data, net_dir, cfg, strategy=None, steps=STEPS, seed=0, hooks=(),
          gmp=None, checkpoint_every=1000, **training_kw):
  """Trains LeNet-300-100 on the fixture with the hook of `cfg`."""
  strategy = strategy or tf.distribute.get_strategy()
  model = build(data, strategy)
  algorithm = make_algorithm(model, cfg, data, steps, seed, gmp)
  tt.pruning.initialize_masks(model, algorithm)
  config = training.TrainingConfig(steps=steps, seed=seed, eval_every=steps,
                                   checkpoint_every=checkpoint_every,
                                   **training_kw)
  hook = training.MaskHook(algorithm)
  recorder = Recorder()
  trainer = training.Trainer(model, data, config, strategy, str(net_dir),
                             hooks=[hook, recorder, *hooks], quiet=True)
  result = trainer.fit()
  return dict(model=model, masks=pruning.get_masks(model),
              weights=pruning.get_weights(model), result=result,
              updates=recorder.updates, hook=hook, trainer=trainer,
              algorithm=algorithm)


_RUNS = {}


def rigl_run(data, tmp_path_factory, seed=0):
  """The reference RigL run (Adam, 80 steps, dT=10), computed once."""
  if seed not in _RUNS:
    _RUNS[seed] = train(data, tmp_path_factory.mktemp('rigl'),
                        sparse_cfg(method='rigl', seed=seed), seed=seed)
  return _RUNS[seed]


def equal(a, b):
  return set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


# -- configuration ------------------------------------------------------------------


@pytest.mark.parametrize('kw,setting', [
    (dict(method='snap'), 'sparse_training.method'),
    (dict(sparsity=1.0), 'sparse_training.sparsity'),
    (dict(distribution='normal'), 'sparse_training.distribution'),
    (dict(update_every=0), 'sparse_training.update_every'),
    (dict(update_every=2.5), 'sparse_training.update_every'),
    (dict(end_step='soon'), 'sparse_training.end_step'),
    (dict(end_step=1.5), 'sparse_training.end_step'),
    (dict(drop_fraction=1.2), 'sparse_training.drop_fraction'),
    (dict(drop_fraction_decay='linear'), 'sparse_training.drop_fraction_decay'),
    (dict(custom_sparsity=[0.1]), 'sparse_training.custom_sparsity'),
    (dict(custom_sparsity={'fc1': 2}), 'sparse_training.custom_sparsity'),
    (dict(dense_first_layer='yes'), 'sparse_training.dense_first_layer'),
    (dict(seed=-1), 'sparse_training.seed'),
    (dict(power_scale=-1), 'sparse_training.power_scale'),
])
def test_config_errors_name_the_setting(kw, setting):
  with pytest.raises(tt.ConfigError, match=setting.replace('.', r'\.')):
    algorithms.SparseTrainingSettings(**kw)


@pytest.mark.parametrize('kw,setting', [
    (dict(frequency=0), 'gmp.frequency'),
    (dict(begin_step='x'), 'gmp.begin_step'),
    (dict(power=0), 'gmp.power'),
    (dict(initial_sparsity=1.0), 'gmp.initial_sparsity'),
])
def test_gmp_config_errors(kw, setting):
  with pytest.raises(tt.ConfigError, match=setting):
    algorithms.GMPSettings(**kw)


def test_unknown_custom_layer_and_late_end_step(data, tmp_path):
  model = build(data)
  with pytest.raises(tt.ConfigError, match='sparse_training.custom_sparsity'):
    tt.pruning.target_sparsities(model,
                                 sparse_cfg(custom_sparsity={'fc9': 0.5}))
  with pytest.raises(tt.ConfigError, match='sparse_training.end_step'):
    train(data, tmp_path, sparse_cfg(end_step='100it'), steps=20)
  with pytest.raises(tt.ConfigError, match=r'sparse_training.begin_step: '
                     r'0.8 is step 16, not before sparse_training.end_step'):
    make_algorithm(model, sparse_cfg(begin_step=0.8), data, steps=20)
  with pytest.raises(tt.ConfigError, match='sparse_training.begin_step'):
    sparse_cfg(begin_step='soon')


def test_resolve_step_forms_and_multiplier():
  r = lambda v, m=1.0: algorithms.RunSteps(400, 50, m).resolve(v, 's')
  assert [r(0.75), r(1.0), r(300), r('300it'), r('2ep')] == [
      300, 400, 300, 300, 100]
  # Step counts scale with training.steps_multiplier; fractions of the
  # (already scaled) total follow it by construction.
  assert [r('2ep', 2.0), r(300, 2.0)] == [200, 600]
  config = training.TrainingConfig(steps=400, steps_multiplier=2.0)
  total = training.resolve_schedule(config, 50).steps
  assert algorithms.RunSteps(total, 50, 2.0).resolve(0.75, 's') == 600


def test_target_sparsities_uniform_first_layer_dense_custom_and_erk(data):
  model = build(data)
  u = tt.pruning.target_sparsities(model, sparse_cfg(distribution='uniform'))
  assert u == {'fc1': 0.0, 'fc2': 0.9, 'output': 0.9}
  u = tt.pruning.target_sparsities(
      model, sparse_cfg(distribution='uniform', dense_first_layer=False,
                        custom_sparsity={'output': 0.5}))
  assert u == {'fc1': 0.9, 'fc2': 0.9, 'output': 0.5}
  e = tt.pruning.target_sparsities(model, sparse_cfg(sparsity=0.9))
  shapes = pruning.weight_shapes(model)
  assert e == distributions.erk(shapes, 0.9)
  nz = distributions.nonzeros(shapes, e)
  assert sum(nz.values()) == pytest.approx(0.1 * 266200, abs=2)


def test_select_is_exact_and_breaks_ties_by_index():
  scores = np.array([3., 1., 1., 0., 1., 5., np.nan, 1.])
  cand = np.ones(8, bool)
  assert sorted(topk.select(scores, cand, 3)) == [1, 2, 3]
  assert sorted(topk.select(scores, cand, 2, largest=True)) == [0, 5]
  cand[1] = False
  assert sorted(topk.select(scores, cand, 3)) == [2, 3, 4]
  assert sorted(topk.select(scores, cand, 8)) == [0, 2, 3, 4, 5, 6, 7]
  assert topk.select(scores, cand, 0).size == 0
  # Matches a full lexicographic sort (score, index) on random ties.
  rng = np.random.default_rng(0)
  s = rng.integers(0, 5, 1000).astype(np.float32)
  c = rng.random(1000) < 0.5
  idx = np.flatnonzero(c)
  want = idx[np.lexsort((idx, s[idx]))[:100]]
  assert sorted(topk.select(s, c, 100)) == sorted(want)


def test_drop_fraction_schedules():
  # Step t (1-based) is global step g = t - 1, as rigl counts: the first
  # update (g = begin) replaces alpha; the cosine spans begin..end.
  cos = algorithms.DropFraction(0.3, 'cosine', 1000)
  assert cos(1) == pytest.approx(0.3)
  assert cos(251) == pytest.approx(0.15 * (1 + math.cos(math.pi / 4)))
  assert cos(501) == pytest.approx(0.15)
  assert cos(1001) == pytest.approx(0.0, abs=1e-12)
  late = algorithms.DropFraction(0.3, 'cosine', 1000, begin_step=200)
  assert late(201) == pytest.approx(0.3)
  assert late(601) == pytest.approx(0.15)
  assert algorithms.DropFraction(0.3, 'constant', 1000)(700) == 0.3
  # 'lr': alpha * lr(t) / base, with the trainer's LR schedule (the hook
  # passes lr(t) / base as `lr_ratio`).
  f = algorithms.DropFraction(0.4, 'lr', 1000)
  lr = training.LearningRate(0.1, 'step', 1000, milestones=(500,), gamma=0.1)
  assert f(100, lr.value(100) / lr.base) == pytest.approx(0.4)
  assert f(600, lr.value(600) / lr.base) == pytest.approx(0.04)
  lr = training.LearningRate(0.1, 'cosine', 1000)
  assert f(500, lr.value(500) / lr.base) == pytest.approx(0.2, rel=1e-5)


def test_update_schedule_follows_the_reference_phase():
  """rigl's TF1 code updates at global steps begin + k * ΔT (g <= end;
  here g < end): with begin 0 at the very first step."""
  every = algorithms.UpdateSchedule(100, 750)
  assert [t for t in range(1, 1001) if every(t)] == [
      1, 101, 201, 301, 401, 501, 601, 701]
  assert [every.next(s) for s in (0, 1, 100, 101, 700, 701)] == [
      1, 101, 101, 201, 701, None]
  old = algorithms.UpdateSchedule(100, 750, begin=99)  # before 0.3
  assert [t for t in range(1, 1001) if old(t)] == list(range(100, 701, 100))
  assert old.next(0) == 100 and old.next(100) == 200


def test_optimizer_slots_found_for_every_optimizer():
  v = tf.Variable(tf.ones((3, 4)))
  b = tf.Variable(tf.ones((4,)))
  for opt, n in [(keras.optimizers.Adam(), 2), (keras.optimizers.AdamW(), 2),
                 (keras.optimizers.SGD(momentum=0.9), 1),
                 (keras.optimizers.SGD(), 1),  # SGD keeps m even without momentum
                 (keras.optimizers.RMSprop(momentum=0.9), 2),
                 (keras.optimizers.legacy.Adam(), 2)]:
    opt.build([v, b]) if not hasattr(opt, 'get_slot_names') else \
        opt.apply_gradients([(tf.ones((3, 4)), v), (tf.ones((4,)), b)])
    slots = training.optimizer_slots(opt, v)
    assert len(slots) == n, type(opt).__name__
    assert all(s.shape == v.shape for s in slots)
  for name in training.OPTIMIZERS:  # every optimizer training.* can build
    config = training.TrainingConfig(optimizer=name, steps=10)
    opt, _ = training.make_optimizer(config, training.resolve_schedule(
        config, 1))
    opt.build([v, b])
    assert len(training.optimizer_slots(opt, v)) == (
        2 if name.startswith('adam') else 1), name

  class Custom(keras.optimizers.Optimizer):
    """An optimizer that keeps its state where we cannot find it."""

    def build(self, var_list):
      super().build(var_list)
      self._index_dict = {}

  custom = Custom(name='custom')
  custom.build([v])
  with pytest.raises(tt.TicketsError, match='optimizer Custom'):
    training.optimizer_slots(custom, v)


# -- RigL ---------------------------------------------------------------------------


def test_rigl_counts_zero_growth_slots_and_schedule(data, tmp_path_factory):
  run = rigl_run(data, tmp_path_factory)
  ups = run['updates']
  assert [u['step'] for u in ups] == UPDATES  # none at or after T_end = 60
  start = ups[0]['active']
  cos = algorithms.DropFraction(0.3, 'cosine', 60)
  for u in ups:
    assert u['active'] == start  # exactly constant per layer
    assert u['slots'] == 2  # Adam's m and v were checked (Recorder)
    for key, s in u['stats'].items():
      assert s['dropped'] == s['grown'] == u['stats'][key]['grown']
      assert s['drop_fraction'] == pytest.approx(cos(u['step']))
      if key != 'output':  # ERK makes the 10x100 output layer dense
        assert s['grown'] == math.floor(cos(u['step']) * start[key]) > 0
        # Newly active = grown - regrown (just-dropped ones come back).
        assert u['grown'][key] == s['grown'] - s['regrown']
    assert u['stats']['output']['grown'] == 0
  nz = distributions.nonzeros(pruning.weight_shapes(run['model']),
                              distributions.erk(
                                  pruning.weight_shapes(run['model']), 0.9))
  assert start == nz
  r = run['result']
  assert r['method'] == 'rigl' and r['mask_updates'] == len(UPDATES)
  assert 0 < r['churn'] < 1 and 0 <= r['grown_survival'] <= 1
  assert r['density'] == pytest.approx(0.1, abs=1e-4)


def test_rigl_grows_by_gradient_and_drops_by_magnitude(data, tmp_path):
  """One update by hand: the exact sets RigL must choose."""
  model = build(data)
  cfg = sparse_cfg(method='rigl', update_every=1, end_step=1.0)
  algorithm = make_algorithm(model, cfg, data, steps=2)
  tt.pruning.initialize_masks(model, algorithm)
  config = training.TrainingConfig(steps=2, eval_every=2)
  hook = training.MaskHook(algorithm)
  trainer = training.Trainer(model, data, config, tf.distribute.get_strategy(),
                             str(tmp_path), hooks=[hook], quiet=True)
  hook.begin(trainer.context)
  var = model.get_layer('ticket_fc2').layer.kernel
  rng = np.random.default_rng(1)
  grads = {id(v): tf.constant(rng.normal(size=v.shape).astype(np.float32))
           for v in model.trainable_variables}
  before = pruning.get_masks(model)['fc2'].reshape(-1) > 0
  w = var.numpy().reshape(-1)
  f = algorithm.drop_fraction(1)
  k = math.floor(f * before.sum())
  drop = topk.select(np.abs(w), before, k)
  # Make the dense gradient largest at one just-dropped connection: RigL
  # regrows it, and it keeps its weight (never dropped, as the references).
  g = grads[id(var)].numpy().reshape(-1)
  g[drop[0]] = 1e6
  grads[id(var)] = tf.constant(g.reshape(var.shape))
  g = np.abs(g)
  hook.after_step(trainer.context, 1, grads)
  after = pruning.get_masks(model)['fc2'].reshape(-1) > 0
  kept = before.copy()
  kept[drop] = False
  grow = topk.select(g, ~kept, k, largest=True)
  want = kept.copy()
  want[grow] = True
  np.testing.assert_array_equal(after, want)
  new = np.zeros_like(before)
  new[grow] = True
  regrown = new & before
  new &= ~before
  assert regrown[drop[0]] and new.sum() == k - regrown.sum()
  now = var.numpy().reshape(-1)
  assert np.all(now[new] == 0.0)
  np.testing.assert_array_equal(now[regrown], w[regrown])
  assert np.all(w[regrown] != 0.0)


def test_rigl_deterministic_for_a_seed(data, tmp_path_factory, tmp_path):
  a = rigl_run(data, tmp_path_factory)
  b = train(data, tmp_path / 'again', sparse_cfg(method='rigl'))
  assert equal(a['masks'], b['masks']) and equal(a['weights'], b['weights'])
  c = rigl_run(data, tmp_path_factory, seed=1)
  assert not equal(a['masks'], c['masks'])


def killed_and_resumed(data, net, kill_at, checkpoint_every):
  """A RigL run killed after step `kill_at`, then resumed to the end by a
  fresh trainer and hook."""
  with pytest.raises(KeyboardInterrupt):
    train(data, net, sparse_cfg(method='rigl'), hooks=[Kill(kill_at)],
          checkpoint_every=checkpoint_every)
  return train(data, net, sparse_cfg(method='rigl'),
               checkpoint_every=checkpoint_every)


def test_rigl_resume_equals_uninterrupted(data, tmp_path_factory, tmp_path):
  """Killed at step 37 (last checkpoint: 25), resumed by a fresh trainer and
  hook: updates 31, 41, 51 happen after the resume."""
  ref = rigl_run(data, tmp_path_factory)
  resumed = killed_and_resumed(data, tmp_path / 'net', 37, 25)
  assert [u['step'] for u in resumed['updates']] == [31, 41, 51]
  assert equal(ref['masks'], resumed['masks'])
  assert equal(ref['weights'], resumed['weights'])
  # Churn and growth bookkeeping survive the resume (checkpointed state).
  for k in ('churn', 'grown_survival', 'layer_grown_survival', 'mask_updates',
            'grown_connections'):
    assert resumed['result'][k] == ref['result'][k], k


def test_channel_sparse_set_resume_equals_uninterrupted(data, tmp_path):
  """SET removing half the hidden units (its masks are its whole state):
  killed at step 37 (last checkpoint 25), resumed by a fresh trainer and
  hook, it ends with the masks and weights of the uninterrupted run; the
  invariants (Recorder) hold at every step and update."""
  cfg = sparse_cfg(method='set', channel_sparsity=0.5)
  ref = train(data, tmp_path / 'ref', cfg, checkpoint_every=25)
  with pytest.raises(KeyboardInterrupt):
    train(data, tmp_path / 'net', cfg, hooks=[Kill(37)], checkpoint_every=25)
  resumed = train(data, tmp_path / 'net', cfg, checkpoint_every=25)
  assert [u['step'] for u in resumed['updates']] == [31, 41, 51]
  assert equal(ref['masks'], resumed['masks'])
  assert equal(ref['weights'], resumed['weights'])
  alive = [int(np.any(ref['masks'][k], axis=0).sum()) for k in ('fc1', 'fc2')]
  assert sum(alive) == 200
  assert [u['stats']['fc1']['units_alive'] + u['stats']['fc2']['units_alive']
          for u in ref['updates']] == [400, 302, 243, 213, 202, 200]


def test_rigl_resumed_after_its_last_update_runs_the_same_compiled_loop(
    data, tmp_path_factory, tmp_path):
  """Resumed at step 60, after the last update (50): the fresh trainer
  compiles the loop an uninterrupted run uses (the one whose last step can
  return gradients), not the plain one, and ends bitwise equal."""
  ref = rigl_run(data, tmp_path_factory)
  resumed = killed_and_resumed(data, tmp_path / 'net', 67, 60)
  assert resumed['updates'] == []
  compiled = [run['trainer'].steps.built for run in (resumed, ref)]
  assert compiled == [[('loop', True)]] * 2
  assert equal(ref['masks'], resumed['masks'])
  assert equal(ref['weights'], resumed['weights'])


def test_rigl_mirrored_identical_masks_on_replicas(data, mirrored,
                                                   tmp_path_factory, tmp_path):
  run = train(data, tmp_path, sparse_cfg(method='rigl'), strategy=mirrored)
  assert len(run['updates']) == len(UPDATES)
  for wr in wrapper_lib.wrappers(run['model']):
    for w, m in zip(wr.prunable_weights, wr.masks):
      reps = [v.numpy() for v in m.values]
      assert len(reps) == 2
      np.testing.assert_array_equal(reps[0], reps[1])
      for w_rep, m_rep in zip(w.values, m.values):
        assert np.all(w_rep.numpy()[m_rep.numpy() == 0] == 0.0)
  ref = rigl_run(data, tmp_path_factory)
  assert equal(run['masks'], ref['masks'])


# -- SET, static, GMP ----------------------------------------------------------------


def test_set_grows_randomly_but_deterministically(data, tmp_path_factory,
                                                  tmp_path):
  cfg = sparse_cfg(method='set')
  a = train(data, tmp_path / 'a', cfg)
  b = train(data, tmp_path / 'b', cfg)
  assert equal(a['masks'], b['masks'])
  assert [u['step'] for u in a['updates']] == UPDATES
  for u in a['updates']:
    assert u['active'] == a['updates'][0]['active']
  assert not equal(a['masks'], rigl_run(data, tmp_path_factory)['masks'])
  algorithm = a['algorithm']
  w = np.zeros(50)
  s1 = algorithm.grow_scores('fc1', 0, 10, w, None)
  assert np.array_equal(s1, algorithm.grow_scores('fc1', 0, 10, w, None))
  assert not np.array_equal(s1, algorithm.grow_scores('fc1', 0, 20, w, None))
  assert not np.array_equal(s1, algorithm.grow_scores('fc1', 1, 10, w, None))


def test_static_never_changes_masks(data, tmp_path):
  model = build(data)
  cfg = sparse_cfg(method='static')
  tt.pruning.initialize_masks(model, make_algorithm(model, cfg, data))
  start = pruning.get_masks(model)
  run = train(data, tmp_path, cfg)
  assert run['updates'] == []
  assert equal(run['masks'], start)
  assert run['result']['churn'] == 0.0 and run['result']['method'] == 'static'


def test_gmp_reaches_target_at_end_step_with_tfmot_schedule(data, tmp_path):
  cfg = sparse_cfg(method='gmp', sparsity=0.95)
  gmp = algorithms.GMPSettings(begin_step=0.125, end_step=0.75, frequency=15)
  run = train(data, tmp_path, cfg, gmp=gmp)
  steps = [u['step'] for u in run['updates']]
  # begin 10 (s = 0: nothing to prune), then 25, 40, 55 and the end step 60.
  assert steps == [25, 40, 55, 60]
  shapes = pruning.weight_shapes(run['model'])
  targets = distributions.erk(shapes, 0.95)
  want = distributions.nonzeros(shapes, targets)
  assert run['updates'][-1]['active'] == want
  assert {k: int(m.sum()) for k, m in run['masks'].items()} == want
  # Intermediate targets are tfmot's PolynomialDecay values.
  ref = tfmot.sparsity.keras.PolynomialDecay(0.0, targets['fc1'], 10, 60,
                                             power=3, frequency=15)
  should, s = ref(tf.constant(40, tf.int64))
  assert bool(should)
  u40 = run['updates'][1]
  assert u40['stats']['fc1']['sparsity'] == pytest.approx(float(s))
  assert u40['active']['fc1'] == round((1 - float(s)) * shapes['fc1'][0]
                                       * shapes['fc1'][1])
  active = [sum(u['active'].values()) for u in run['updates']]
  assert active == sorted(active, reverse=True)
  r = run['result']
  assert r['method'] == 'gmp' and r['density'] == pytest.approx(0.05, abs=1e-4)


# -- configs and the entrypoint --------------------------------------------------------


@pytest.mark.parametrize('name', ['lenet_rigl', 'lenet_set', 'lenet_static',
                                  'lenet_gmp', 'lenet_rigl_sgd',
                                  'resnet20_rigl', 'mobilenet_rigl',
                                  'lenet_chase'])
def test_gin_configs_parse_and_validate(name):
  run_settings = cli.settings([os.path.join(GIN_DIR, name + '.gin')])
  cfg = run_settings.sparse_training
  method = name.split('_')[1] if 'lenet' in name else 'rigl'
  assert cfg.method == ('rigl' if method == 'chase' else method)
  if cfg.method == 'gmp':
    assert run_settings.gmp.frequency >= 1


@pytest.mark.parametrize('method', ['set', 'static', 'gmp', 'rigl'])
def test_rigl_mnist_protocol_applies_to_every_method(method):
  run_settings = cli.settings(
      [os.path.join(GIN_DIR, f'lenet_{method}.gin'),
       os.path.join(GIN_DIR, 'rigl_mnist_protocol.gin')],
      ['training.steps_multiplier = 0.1'])
  assert run_settings.sparse_training.method == method
  config = run_settings.training
  s = training.resolve_schedule(config, steps_per_epoch=600)  # 60,000 / 100
  assert (config.optimizer, s.steps, s.milestones) == (
      'nesterov', 12000, (4500, 5700))  # the reference's sparse drops: 75, 95
  assert run_settings.dataset.validation_examples == 0
  assert run_settings.dataset.normalize == 'unit'  # pixels in [0, 1]
  if method == 'gmp':  # the reference's pruning steps, scaled by 0.1
    cfg = run_settings.gmp
    assert (cfg.begin_step, cfg.end_step, cfg.frequency) == (2000, 30000, 500)


def test_mobilenet_config_sparsifies_only_pointwise_convs():
  run_settings = cli.settings(
      [os.path.join(GIN_DIR, 'mobilenet_rigl.gin')],
      ['mobilenet_v1.width_multiplier = 0.25'])
  cfg = run_settings.sparse_training
  model = tt.wrap(models.build_model(input_shape=(32, 32, 3), num_classes=10,
                                     **run_settings.model.as_dict()))
  s = tt.pruning.target_sparsities(model, cfg)
  assert s['conv1'] == 0.0 and s['output'] == 0.0
  pw = {k: v for k, v in s.items() if k.startswith('pw')}
  assert len(pw) == 13 and all(v >= 2 / 3 for v in pw.values())
  assert set(s) == set(pw) | {'conv1', 'output'}  # depthwise: not prunable


@pytest.mark.slow
def test_cli_rigl_run_end_to_end(tmp_path):
  out = tmp_path / 'run'
  proc = cli.train(('gin/lenet_rigl.gin',), (
      'training.steps = 40', 'training.eval_every = 20',
      'sparse_training.update_every = 10', 'dataset.max_train_examples = 600'),
                   f'--output_dir={out}', '--quiet')
  assert proc.returncode == 0, proc.stderr[-2000:]
  with open(out / 'results.csv') as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 1
  row = rows[0]
  assert row['method'] == 'rigl' and row['branch'] == 'sparse_training'
  assert row['level'] == '0' and row['seed'] == '0'
  assert float(row['density']) == pytest.approx(0.1, abs=1e-4)
  assert float(row['mask_updates']) == 3  # steps 1, 11, 21 (g < T_end = 30)
  assert 0 < float(row['churn']) < 1 and row['grown_survival'] != ''
  assert (out / 'level_0' / 'start' / 'weights.index').exists()
  assert (out / 'level_0' / 'final').exists()


class Snap(training.Hook):
  """Weights after every step, and the dense gradients RigL was handed."""

  def __init__(self):
    self.weights, self.grads = {}, {}

  def after_step(self, ctx, step, grads):
    self.weights[step] = pruning.get_weights(ctx.model)
    if grads is not None:
      var = ctx.model.get_layer('ticket_fc1').layer.kernel
      self.grads[step] = np.asarray(grads[id(var)])


@pytest.mark.parametrize('skip', [True, False])
def test_mask_update_replaces_the_weight_update(data, tmp_path, skip):
  snap = Snap()
  train(data, tmp_path, sparse_cfg(method='rigl',
                                   skip_update_on_mask_steps=skip),
        steps=25, hooks=[snap])
  step = UPDATES[1]  # 11: the first drop-and-grow after a trained step
  before, after = snap.weights[step - 1], snap.weights[step]
  moved = []
  for key in before:
    kept = (before[key] != 0) & (after[key] != 0)
    moved.append(not np.array_equal(before[key][kept], after[key][kept]))
  # Skipping: survivors keep exactly their values at the update step.
  assert not any(moved) if skip else all(moved)
  # Ordinary steps move them in both modes.
  assert not np.array_equal(snap.weights[step + 1]['fc1'],
                            snap.weights[step]['fc1'])
  # RigL was handed the dense gradient: non-zero at inactive positions.
  mask = before['fc1'] != 0
  assert np.count_nonzero(snap.grads[step][~mask]) > 0.5 * (~mask).sum()


def test_optimizer_state_stays_zero_at_pruned_positions(data, tmp_path):
  run = train(data, tmp_path, sparse_cfg(method='static'), steps=40)
  model, opt = run['model'], run['trainer'].optimizer
  for key, (wr, i) in wrapper_lib.prunable_entries(model).items():
    mask = wr.masks[i].numpy()
    slots = training.optimizer_slots(opt, wr.prunable_weights[i])
    assert len(slots) == 2  # Adam's m and v
    for slot in slots:
      assert np.all(slot.numpy()[mask == 0] == 0.0), (key, slot.name)
      if key != 'output':  # ERK keeps the output layer dense
        assert np.count_nonzero(slot.numpy()[mask > 0]) > 0


# -- SNIP and a fixed scoring batch ----------------------------------------------


def test_snip_by_hand():
  snip = algorithms.SNIP(sparse_cfg(method='snip'), {'a': 0.5}, 0,
                         algorithms.RunSteps(10, 10))
  mask = np.ones(6, bool)
  w = np.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.1], np.float32)
  g = np.array([0.1, 0.1, 4.0, -0.2, 0.3, 10.0], np.float32)
  up = snip.update(0, {'a': mask}, {'a': w}, {'a': g})
  # |g * w| = 0.1, 0.2, 2.0, 0.6, 0.3, 1.0: keep the 3 largest.
  np.testing.assert_array_equal(up.masks['a'], [0, 0, 1, 1, 0, 1])


def test_snip_prunes_at_initialisation_by_sensitivity(data, tmp_path):
  run = train(data, tmp_path / 'snip', sparse_cfg(method='snip'), steps=20)
  hook = run['hook']
  assert hook.batch[0].shape[0] == data.batch_size
  assert run['updates'] == []  # static after the one-shot pruning
  shapes = pruning.weight_shapes(run['model'])
  want = distributions.nonzeros(shapes, distributions.erk(shapes, 0.9))
  assert {k: int(m.sum()) for k, m in run['masks'].items()} == want
  # The same selection by hand: |g * w| of the dense initial network on the
  # hook's fixed batch.
  model = build(data)
  x, y = hook.batch
  with tf.GradientTape() as tape:  # written out here, not the hook's code
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        tf.constant(y, tf.int32), model(tf.constant(x), training=True)))
  variables = [wr.prunable_weights[i] for wr, i in
               wrapper_lib.prunable_entries(model).values()]
  grads = dict(zip([id(v) for v in variables],
                   tape.gradient(loss, variables)))
  for key, (wr, i) in wrapper_lib.prunable_entries(model).items():
    var = wr.prunable_weights[i]
    scores = np.abs(grads[id(var)].numpy() * var.numpy()).reshape(-1)
    chosen = topk.select(scores, np.ones(scores.size, bool), want[key],
                            largest=True)
    expect = np.zeros(scores.size)
    expect[chosen] = 1
    np.testing.assert_array_equal(run['masks'][key].reshape(-1), expect)
  assert run['result']['method'] == 'snip'


def test_rigl_grow_batch_size_scores_on_a_fixed_batch(data, tmp_path):
  run = train(data, tmp_path, sparse_cfg(method='rigl', grow_batch_size=200),
              steps=25)
  hook = run['hook']
  assert hook.batch[0].shape[0] == 200
  assert not any(hook.wants_gradients(s) for s in range(30))
  assert [u['step'] for u in run['updates']] == [1, 11]  # T_end = 19
  again = train(data, tmp_path / 'again',
                sparse_cfg(method='rigl', grow_batch_size=200), steps=25)
  assert equal(run['masks'], again['masks'])
  default = train(data, tmp_path / 'default', sparse_cfg(method='rigl'),
                  steps=25)
  assert not equal(run['masks'], default['masks'])
