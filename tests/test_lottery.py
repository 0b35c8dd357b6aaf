"""IMP levels: exact densities, rewinding, branches, extension, resume."""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

import cli
import events
import tf_tickets as tt
from tf_tickets import models
from tf_tickets import experiments
from tf_tickets import masks as pruning
from tf_tickets import rundir
from tf_tickets.experiments import lottery

BASE = ('training.steps = 20', 'training.eval_every = 10',
        'dataset.max_train_examples = 600', 'experiment.quiet = True')


def run(run_dir, *params):
  return experiments.run(str(run_dir), cli.settings(
      [os.path.join(cli.REPO, 'gin', 'lenet_imp.gin')],
      list(cli.FIXTURE_PARAMS) + list(BASE) + list(params)))


def variables(path):
  """{checkpoint key: array} of a saved weights directory (no optimizer)."""
  prefix = os.path.join(path, 'weights')
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name, _ in tf.train.list_variables(prefix)
          if 'OBJECT_GRAPH' not in name and 'optimizer' not in name}


def layer_vars(path, layer='fc1'):
  """(kernel, mask, initial, rewind) of a wrapped layer in saved weights."""
  model = tt.wrap(models.build_model(name='lenet_300_100',
                                     input_shape=(28, 28, 1), num_classes=10))
  rundir.load_weights(model, path)
  return tuple(
      pruning.get_weights(model, which)[layer] if which != 'mask'
      else pruning.get_masks(model)[layer]
      for which in ('weights', 'mask', 'initial', 'rewind'))


@pytest.fixture(scope='module')
def imp_run(tmp_path_factory):
  d = tmp_path_factory.mktemp('imp') / 'run'
  rows = run(d, 'lottery.levels = 3')
  return d, rows


def test_exact_per_level_densities(imp_run):
  _, rows = imp_run
  sizes = {'fc1': 784 * 300, 'fc2': 300 * 100, 'output': 100 * 10}
  remaining = dict(sizes)
  for level, row in enumerate(rows):
    assert row['level'] == level
    if level:
      for k in remaining:
        rate = 0.1 if k == 'output' else 0.2
        remaining[k] -= int(round(rate * remaining[k]))
    for k, n in sizes.items():
      assert row['layer_density'][k] == remaining[k] / n
    assert row['active_weights'] == sum(remaining.values())
    assert row['density'] == sum(remaining.values()) / sum(sizes.values())


def test_start_weights_equal_init_times_mask(imp_run):
  d, _ = imp_run
  theta0 = layer_vars(os.path.join(d, 'level_0', 'start'), 'fc1')[2]
  for level in range(4):
    kernel, mask, init, _ = layer_vars(os.path.join(d, f'level_{level}',
                                                    'start'), 'fc1')
    np.testing.assert_array_equal(init, theta0)
    np.testing.assert_array_equal(kernel, init * mask)
    final_kernel, final_mask, _, _ = layer_vars(
        os.path.join(d, f'level_{level}', 'final'), 'fc1')
    np.testing.assert_array_equal(final_mask, mask)
    assert np.all(final_kernel[mask == 0] == 0.0)
    if level:
      prev_final = layer_vars(os.path.join(d, f'level_{level - 1}', 'final'),
                              'fc1')[0]
      prev_mask = layer_vars(os.path.join(d, f'level_{level - 1}', 'final'),
                             'fc1')[1]
      # The new mask keeps the largest trained weights of the last level.
      kept = np.abs(prev_final[(mask == 1)])
      dropped = np.abs(prev_final[(mask == 0) & (prev_mask == 1)])
      assert kept.min() >= dropped.max()


def test_results_csv_has_a_row_per_level(imp_run):
  d, _ = imp_run
  rows = rundir.read_results(os.path.join(d, 'results.csv'))
  assert [r['level'] for r in rows] == ['0', '1', '2', '3']
  for r in rows:
    for col in ('density', 'test_accuracy', 'early_stop_step',
                'early_stop_test_accuracy', 'wall_time', 'density/fc1'):
      assert r[col] != ''


def test_extending_levels_keeps_finished_levels(imp_run, tmp_path):
  d, _ = imp_run
  import shutil  # pylint: disable=g-import-not-at-top
  ext = tmp_path / 'ext'
  shutil.copytree(d, ext)
  stamps = {p: os.stat(p).st_mtime_ns
            for p in glob.glob(str(ext / 'level_*' / '**'), recursive=True)
            if os.path.isfile(p)}
  rows = run(ext, 'lottery.levels = 4')
  assert [r['level'] for r in rows] == [0, 1, 2, 3, 4]
  for p, t in stamps.items():
    assert os.stat(p).st_mtime_ns == t, f'{p} was rewritten'
  assert (ext / 'level_4' / 'final').exists()


def test_late_rewinding_uses_theta_k(tmp_path):
  rows = run(tmp_path / 'late', 'lottery.levels = 1', "lottery.rewind = '7it'")
  assert rows[1]['rewind'] == '7it'
  start = os.path.join(tmp_path, 'late', 'level_1', 'start')
  kernel, mask, init, rewind = layer_vars(start, 'fc1')
  assert not np.array_equal(rewind, init)
  np.testing.assert_array_equal(kernel, rewind * mask)
  # theta_k is exactly the dense network after 7 steps of the same run.
  run(tmp_path / 'seven', 'training.steps = 7', "experiment.kind = 'dense'")
  k7 = layer_vars(os.path.join(tmp_path, 'seven', 'level_0', 'final'),
                  'fc1')[0]
  np.testing.assert_array_equal(rewind, k7)


@pytest.mark.parametrize('mode', ['none', 'lr'])
def test_finetune_and_lr_rewinding_start_from_trained_weights(tmp_path, mode):
  rows = run(tmp_path / mode, 'lottery.levels = 1', f"lottery.rewind = '{mode}'",
             'lottery.finetune_learning_rate = 1e-4')
  final0 = layer_vars(os.path.join(tmp_path, mode, 'level_0', 'final'),
                      'fc1')[0]
  kernel, mask, _, _ = layer_vars(
      os.path.join(tmp_path, mode, 'level_1', 'start'), 'fc1')
  np.testing.assert_array_equal(kernel, final0 * mask)
  assert rows[1]['density'] < 1.0


def test_branches(imp_run, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  d = tmp_path / 'run'
  shutil.copytree(imp_run[0], d)
  # Both controls in one invocation (a tuple of branches, run in turn).
  rows = run(d, 'lottery.levels = 3',
             "lottery.branch = ('random_reinit', 'random_prune')")
  for branch in ('random_reinit', 'random_prune'):
    assert os.path.exists(d / f'branch_{branch}' / 'results.csv')
    branch_rows = [r for r in rows if r['branch'] == branch]
    assert [r['level'] for r in branch_rows] == [1, 2, 3]
  for level in (1, 2, 3):
    t_kernel, t_mask, t_init, _ = layer_vars(
        os.path.join(d, f'level_{level}', 'start'), 'fc1')
    # random_reinit: same mask, a fresh initialisation.
    k, m, init, _ = layer_vars(
        os.path.join(d, 'branch_random_reinit', f'level_{level}', 'start'),
        'fc1')
    np.testing.assert_array_equal(m, t_mask)
    assert not np.allclose(init, t_init)
    assert np.std(init) == pytest.approx(np.std(t_init), rel=0.05)
    np.testing.assert_array_equal(k, init * m)
    # random_prune: same count, a different mask, the ticket's theta_0.
    k, m, init, _ = layer_vars(
        os.path.join(d, 'branch_random_prune', f'level_{level}', 'start'),
        'fc1')
    assert m.sum() == t_mask.sum()
    assert not np.array_equal(m, t_mask)
    np.testing.assert_array_equal(init, t_init)
    np.testing.assert_array_equal(k, t_init * m)


def test_branch_levels_train_only_those_levels(imp_run, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  d = tmp_path / 'run'
  shutil.copytree(imp_run[0], d)
  rows = run(d, 'lottery.levels = 3', "lottery.branch = 'random_reinit'",
             'lottery.branch_levels = (3, 1)')
  assert [r['level'] for r in rows if r['branch'] == 'random_reinit'] == [1, 3]
  assert not os.path.exists(d / 'branch_random_reinit' / 'level_2')
  _, t_mask, t_init, _ = layer_vars(os.path.join(d, 'level_3', 'start'), 'fc1')
  _, m, init, _ = layer_vars(
      os.path.join(d, 'branch_random_reinit', 'level_3', 'start'), 'fc1')
  np.testing.assert_array_equal(m, t_mask)
  assert not np.allclose(init, t_init)


def test_bad_lottery_settings():
  with pytest.raises(ValueError, match='lottery.branch_levels'):
    lottery.LotterySettings(levels=3, branch='random_prune',
                            branch_levels=(2, 4))
  with pytest.raises(ValueError, match='lottery.branch_levels'):
    lottery.LotterySettings(levels=3, branch_levels=(0,))
  with pytest.raises(ValueError, match='lottery.branch'):
    lottery.LotterySettings(branch='random')
  with pytest.raises(ValueError, match="lottery.branch: unknown value 'x'"):
    lottery.LotterySettings(branch=('random_prune', 'x'))
  with pytest.raises(ValueError, match='lottery.branch: unknown value None'):
    lottery.LotterySettings(branch=())
  with pytest.raises(ValueError, match='lottery.levels'):
    lottery.LotterySettings(levels=-1)
  with pytest.raises(ValueError, match='lottery.rewind'):
    lottery.LotterySettings(rewind='soon')
  with pytest.raises(ValueError, match='lottery.pruning_fraction'):
    lottery.LotterySettings(pruning_fraction=0.0)


@pytest.mark.slow
def test_resume_after_sigkill_mid_level(tmp_path):
  params = ('training.steps = 400', 'training.eval_every = 100',
            'training.checkpoint_every = 20', 'lottery.levels = 1',
            'dataset.max_train_examples = 1200')
  killed = tmp_path / 'killed'
  cli.train_and_kill('gin/lenet_imp.gin', params, killed,
                     'level_1/checkpoints/ckpt-*.index')
  assert not rundir.is_finished(str(killed / 'level_1'))
  assert rundir.is_finished(str(killed / 'level_0'))
  done = cli.train(('gin/lenet_imp.gin',), params, f'--output_dir={killed}',
                   '--quiet')
  assert done.returncode == 0, done.stderr[-2000:]
  straight = tmp_path / 'straight'
  ref = cli.train(('gin/lenet_imp.gin',), params, f'--output_dir={straight}',
                  '--quiet')
  assert ref.returncode == 0, ref.stderr[-2000:]
  a = variables(str(killed / 'level_1' / 'final'))
  b = variables(str(straight / 'level_1' / 'final'))
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)
  # The resumed level and the lottery summaries: one event file each, with
  # the uninterrupted run's tags and steps.
  for sub in ('level_1', 'lottery'):
    assert len(glob.glob(str(killed / sub / 'events.out.tfevents.*'))) == 1
    steps = {t: sorted(v) for t, v in
             events.read_scalars(str(killed / sub)).items()}
    assert steps == {t: sorted(v) for t, v in
                     events.read_scalars(str(straight / sub)).items()}, sub


# -- the whole network is rewound (ResNet-20 with BatchNorm) --------------------

RESNET = ("model.name = 'resnet20'", 'resnet20.width = 4',
          "lottery.scope = 'global'", "training.lr_schedule = 'constant'",
          'training.steps = 20', 'training.eval_every = 5',
          'dataset.batch_size = 20', 'dataset.max_train_examples = 400',
          'lottery.levels = 1', 'summaries.enabled = False')


def state(path):
  """{key: array} of saved network state without the optimizer."""
  return {k: v for k, v in variables(path).items()
          if not k.startswith('_CHECKPOINTABLE')}


def kind_of(key):
  for part in ('mask_', 'initial_', 'rewind_', 'tt_initial_', 'tt_rewind_'):
    if f'/{part}' in key or key.startswith(part) or f'.{part}' in key:
      return part
  return 'state'


def mask_key(kernel_key, keys):
  """The mask stored beside a wrapped kernel."""
  base = kernel_key.split('/layer/')[0]
  masks = [k for k in keys if k.startswith(base + '/') and '/mask_' in k]
  return masks[0] if len(masks) == 1 else None


def assert_state_equal(start, reference):
  """Every network variable of `start` equals `reference` (kernels times
  `start`'s masks); returns how many were compared."""
  checked = 0
  for key, value in reference.items():
    if kind_of(key) != 'state':
      continue
    m = mask_key(key, start)
    want = value * start[m] if m and start[m].shape == value.shape else value
    np.testing.assert_array_equal(start[key], want, err_msg=key)
    checked += 1
  return checked


@pytest.mark.slow
def test_rewind_init_restores_every_variable(tmp_path):
  run(tmp_path / 'r', *RESNET, "lottery.rewind = 'init'")
  s0 = state(os.path.join(tmp_path, 'r', 'level_0', 'start'))
  s1 = state(os.path.join(tmp_path, 'r', 'level_1', 'start'))
  f0 = state(os.path.join(tmp_path, 'r', 'level_0', 'final'))
  assert set(s0) == set(s1)
  bn = [k for k in s0 if 'moving_mean' in k and kind_of(k) == 'state']
  assert bn and any(not np.array_equal(f0[k], s0[k]) for k in bn)
  assert_state_equal(s1, s0) > 60  # kernels, BN gamma/beta/stats, biases


@pytest.mark.slow
def test_late_rewinding_continues_at_step_k(tmp_path):
  run(tmp_path / 'r', *RESNET, "lottery.rewind = '10it'")
  run(tmp_path / 'ten', *RESNET, "experiment.kind = 'dense'",
      'training.steps = 10')
  s1 = state(os.path.join(tmp_path, 'r', 'level_1', 'start'))
  k10 = state(os.path.join(tmp_path, 'ten', 'level_0', 'final'))
  assert_state_equal(s1, k10)
  result = rundir.read_result(os.path.join(tmp_path, 'r', 'level_1'))
  assert result['steps'] == 20 and result['early_stop_step'] >= 10
  scalars = events.read_scalars(os.path.join(tmp_path, 'r', 'level_1'))
  assert sorted(scalars['eval/val_loss']) == [10, 15, 20]


@pytest.mark.slow
def test_random_reinit_redraws_the_whole_network(tmp_path):
  run(tmp_path / 'r', *RESNET, "lottery.rewind = '10it'",
      "lottery.branch = 'random_reinit'")
  ticket = state(os.path.join(tmp_path, 'r', 'level_1', 'start'))
  control = state(os.path.join(tmp_path, 'r', 'branch_random_reinit',
                               'level_1', 'start'))
  drawn = same = 0
  for key, value in ticket.items():
    if '/mask_' in key:
      np.testing.assert_array_equal(control[key], value, err_msg=key)
    elif kind_of(key) == 'state' and 'kernel' in key:
      drawn += not np.array_equal(control[key], value)
    elif kind_of(key) == 'state' and ('moving_mean' in key or 'beta' in key
                                      or 'bias' in key):
      # fresh from the initializers (zeros), not theta_k's trained values
      assert np.all(control[key] == 0.0), key
      same += 1
  assert drawn > 20 and same > 20
  result = rundir.read_result(os.path.join(tmp_path, 'r',
                                           'branch_random_reinit', 'level_1'))
  assert result['early_stop_step'] >= 10  # starts at step k like the ticket


@pytest.mark.parametrize('schedule,ok', [('cosine', False), ('linear', False),
                                         ('constant', True)])
def test_finetuning_default_rate_must_not_be_about_zero(tmp_path, schedule,
                                                        ok):
  params = ('lottery.levels = 1', "lottery.rewind = 'none'",
            f"training.lr_schedule = '{schedule}'", 'training.steps = 400',
            'training.eval_every = 400')
  short = ('training.steps = 4', 'training.eval_every = 4')
  if ok:
    rows = run(tmp_path / 'r', *params, *short)
    assert len(rows) == 2
    return
  with pytest.raises(tt.ConfigError, match='lottery.finetune_learning_rate'):
    run(tmp_path / 'r', *params)
  assert not os.path.exists(tmp_path / 'r' / 'level_0')  # nothing trained
  rows = run(tmp_path / 'r2', *params, *short,
             'lottery.finetune_learning_rate = 1e-4')
  assert len(rows) == 2


def test_finetune_default_is_the_final_rate_of_the_schedule_with_warmup():
  ctx = experiments.context('unused', cli.settings((), cli.FIXTURE_PARAMS + (
      "training.lr_schedule = 'step'", "training.lr_milestones = (10,)",
      'training.steps = 20', 'training.warmup_steps = 30',
      'training.learning_rate = 1.0')))
  # At step 19: decayed by 0.1 at 10 and still in warmup (20/30).
  assert lottery.finetune_rate(ctx, lottery.LotterySettings()) == (
      pytest.approx(0.1 * 20 / 30))


@pytest.mark.parametrize('name', ['lenet_imp', 'lenet_dense', 'conv2_imp',
                                  'conv4_imp', 'conv6_imp',
                                  'resnet20_imp_rewind', 'vgg16_imp_rewind'])
def test_lottery_configs_parse_validate_and_name_real_layers(name):
  run_settings = cli.settings([os.path.join(cli.REPO, 'gin', name + '.gin')])
  cfg = run_settings.lottery
  model = tt.wrap(models.build_model(input_shape=(32, 32, 3), num_classes=10,
                                     **run_settings.model.as_dict()))
  entries = pruning.entries_of(model)
  pruning.resolve_names(cfg.layer_fractions, entries,
                        'lottery.layer_fractions')
  skipped = pruning.resolve_names({n: 0 for n in cfg.unpruned_layers},
                                  entries, 'lottery.unpruned_layers')
  if name == 'vgg16_imp_rewind':
    assert cfg.scope == 'global' and set(skipped) == {'output'}
  if name in ('conv2_imp', 'conv4_imp'):
    convs = {k: f for k, f in cfg.layer_fractions.items()
             if k.startswith('conv')}
    assert set(convs) == {k for k in entries if k.startswith('conv')}
    assert set(convs.values()) == {0.1} and cfg.pruning_fraction == 0.2
    assert cfg.layer_fractions['output'] == 0.1
