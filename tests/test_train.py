"""The training entrypoint end to end: run dirs, resume after SIGKILL, errors."""
import csv
import glob
import json
import os

import gin
import numpy as np
import pytest
import tensorflow as tf

import cli
import tf_tickets as tt
from tf_tickets import data as data_lib
from tf_tickets import experiments
from tf_tickets import models
from tf_tickets import rundir
from tf_tickets import runner
from tf_tickets import steps as steps_lib
from tf_tickets import training


def rows(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def snapshot(directory):
  """{relative path: (size, mtime_ns)} of every file below `directory`."""
  out = {}
  for root, _, files in os.walk(directory):
    for name in files:
      p = os.path.join(root, name)
      st = os.stat(p)
      out[os.path.relpath(p, directory)] = (st.st_size, st.st_mtime_ns)
  return out


# -- pure helpers ---------------------------------------------------------------


@pytest.mark.parametrize('value,expected', [
    (500, 500), ('500', 500), ('500it', 500), ('2ep', 200), ('0.5ep', 50),
    (' 3 it ', 3)])
def test_parse_steps(value, expected):
  assert steps_lib.resolve(value, 'training.steps', 100) == expected


@pytest.mark.parametrize('value', ['x', '5 epochs', -1, '1.5it', True])
def test_parse_steps_errors(value):
  with pytest.raises(tt.ConfigError, match='training.steps'):
    steps_lib.resolve(value, 'training.steps', 100)


def test_learning_rate_schedules():
  lr = training.LearningRate(0.1, 'step', 100, milestones=(50, 75), gamma=0.1)
  assert [round(lr.value(s), 6) for s in (0, 49, 50, 74, 75, 99)] == [
      0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
  cos = training.LearningRate(1.0, 'cosine', 100)
  assert cos.value(0) == pytest.approx(1.0)
  assert cos.value(50) == pytest.approx(0.5, abs=1e-6)
  assert cos.value(100) == pytest.approx(0.0, abs=1e-6)
  warm = training.LearningRate(1.0, 'constant', 100, warmup=10)
  assert warm.value(0) == pytest.approx(0.1)
  assert warm.value(4) == pytest.approx(0.5)
  assert warm.value(20) == pytest.approx(1.0)


def test_steps_multiplier_scales_schedule():
  config = training.TrainingConfig(steps='2ep', lr_milestones=('1ep',),
                                   warmup_steps=10, steps_multiplier=2.0)
  s = training.resolve_schedule(config, steps_per_epoch=50)
  assert (s.steps, s.milestones, s.warmup) == (200, (100,), 20)


# -- in-process training ------------------------------------------------------


def test_mirrored_training_keeps_invariants(tmp_path):
  """A short lottery run under MirroredStrategy on two logical CPUs."""
  run_settings = cli.settings((), cli.FIXTURE_PARAMS + (
      'training.steps = 12', 'training.eval_every = 6', 'lottery.levels = 1',
      "training.optimizer = 'adamw'", 'training.weight_decay = 0.01',
      'dataset.max_train_examples = 600'))
  strategy = training.make_strategy('mirrored')
  assert strategy.num_replicas_in_sync == 2
  result = experiments.run(str(tmp_path / 'run'), run_settings, strategy,
                           quiet=True)
  assert [r['level'] for r in result] == [0, 1]
  # Level 1's masks trained on, checked on every replica while it trains
  # (not after loading a checkpoint, which is one copy for all).
  with strategy.scope():
    data = data_lib.load(run_settings.dataset)
    model = tt.wrap(models.build_for(data))
  rundir.load_weights(model, str(tmp_path / 'run' / 'level_1' / 'start'))
  assert result[1]['density'] == pytest.approx(
      tt.sparsity_report(model)['density'])
  check = _ReplicaCheck()
  config = training.TrainingConfig(steps=12, eval_every=6, optimizer='adamw',
                                   weight_decay=0.01, learning_rate=0.01)
  training.Trainer(model, data, config, strategy, str(tmp_path / 'again'),
                   hooks=[check], quiet=True).fit()
  assert check.steps == [3, 6, 9, 12]


class _ReplicaCheck(training.Hook):
  """Every 3 steps: masks and weights identical on both replicas, pruned
  weights exactly 0 on each."""

  def __init__(self):
    self.steps = []

  def next_event(self, step):
    return (step // 3 + 1) * 3

  def after_step(self, ctx, step, grads):
    for wr in tt.wrapper.wrappers(ctx.model):
      for w, m in zip(wr.prunable_weights, wr.masks):
        (w0, w1), (m0, m1) = ([r.numpy() for r in v.values] for v in (w, m))
        np.testing.assert_array_equal(m0, m1)
        np.testing.assert_array_equal(w0, w1)
        assert 0 < m0.mean() < 1 and np.all(w0[m0 == 0] == 0.0)
    self.steps.append(step)


# -- the CLI --------------------------------------------------------------------

FAST = ('training.steps = 30', 'training.eval_every = 10',
        'lottery.levels = 0')


@pytest.mark.slow
def test_cli_dense_run_directory(tmp_path):
  out = tmp_path / 'run'
  proc = cli.train(('gin/lenet_dense.gin',), FAST, f'--output_dir={out}',
                   '--quiet')
  assert proc.returncode == 0, proc.stderr[-2000:]
  for name in ('operative_config.gin', 'config.gin', 'results.csv',
               'level_0/final/weights.index', 'level_0/result.json'):
    assert (out / name).exists(), name
  assert glob.glob(str(out / 'level_0' / 'events.out.tfevents.*'))
  (row,) = rows(out / 'results.csv')
  assert row['level'] == '0' and float(row['density']) == 1.0
  assert 0.3 < float(row['test_accuracy']) <= 1.0
  assert int(row['early_stop_step']) in (0, 10, 20, 30)
  assert float(row['wall_time']) > 0
  operative = (out / 'operative_config.gin').read_text()
  assert "model.name = 'lenet_300_100'" in operative
  assert 'training.learning_rate = 0.0012' in operative
  assert 'training.steps = 30' in operative


@pytest.mark.slow
def test_cli_default_run_dir_and_no_redo(tmp_path):
  proc = cli.train(('gin/lenet_dense.gin',), FAST, '--quiet', cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-2000:]
  (run_dir,) = glob.glob(str(tmp_path / 'runs' / 'lenet_dense-*'))
  assert f'run directory: runs/{os.path.basename(run_dir)}' in proc.stdout
  before = snapshot(os.path.join(run_dir, 'level_0'))
  again = cli.train(('gin/lenet_dense.gin',), FAST, '--quiet', cwd=tmp_path)
  assert again.returncode == 0, again.stderr[-2000:]
  assert glob.glob(str(tmp_path / 'runs' / 'lenet_dense-*')) == [run_dir]
  assert snapshot(os.path.join(run_dir, 'level_0')) == before


@pytest.mark.slow
def test_cli_resume_after_sigkill_equals_uninterrupted(tmp_path):
  """Checkpoints by wall time (at call boundaries of 25 steps; by steps:
  test_lottery's resume mid-level): the killed and resumed run ends bitwise
  as the straight one."""
  params = ('training.steps = 600', 'training.eval_every = 200',
            "training.checkpoint_every = '0.2s'", 'lottery.levels = 0',
            'training.steps_per_loop = 25', 'dataset.max_train_examples = 1200')
  killed = tmp_path / 'killed'
  cli.train_and_kill('gin/lenet_dense.gin', params, killed,
                     'level_0/checkpoints/ckpt-*.index')
  assert not (killed / 'level_0' / 'result.json').exists(), (
      'the run finished before it was killed; make it longer')
  resumed = cli.train(('gin/lenet_dense.gin',), params,
                      f'--output_dir={killed}', '--quiet')
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  straight = tmp_path / 'straight'
  ref = cli.train(('gin/lenet_dense.gin',), params,
                  f'--output_dir={straight}', '--quiet')
  assert ref.returncode == 0, ref.stderr[-2000:]
  a = tf.train.load_checkpoint(str(killed / 'level_0' / 'final' / 'weights'))
  b = tf.train.load_checkpoint(str(straight / 'level_0' / 'final' / 'weights'))
  names = [n for n, _ in tf.train.list_variables(
      str(straight / 'level_0' / 'final' / 'weights'))
           if 'OBJECT_GRAPH' not in n]
  assert names
  for n in names:
    np.testing.assert_array_equal(a.get_tensor(n), b.get_tensor(n), err_msg=n)
  ra = json.loads((killed / 'level_0' / 'result.json').read_text())
  rb = json.loads((straight / 'level_0' / 'result.json').read_text())
  assert ra['test_accuracy'] == rb['test_accuracy']
  assert ra['early_stop_step'] == rb['early_stop_step']


@pytest.mark.parametrize('params,expect', [
    (("model.name = 'lenet_9000'",), 'model.name'),
    (("dataset.name = 'imagenet21k'",), 'dataset.name'),
    (("dataset.idx_dir = '/nonexistent/dir'",), 'dataset.idx_dir'),
    (('lottery.pruning_fraction = 1.5',), 'lottery.pruning_fraction'),
    (("lottery.rewind = 'yesterday'",), 'lottery.rewind'),
    (("training.optimizer = 'adagrad9'",), 'training.optimizer'),
    (('training.steps = -5',), 'training.steps'),
    (('lottery.levels = 2', 'lottery.layer_fractions = {"output": -0.1}'),
     'lottery.layer_fractions'),
    (('this is not gin',), 'gin config'),
    (("training.checkpoint_every = '0s'",), 'training.checkpoint_every'),
    (("training.checkpoint_every = '-5min'",), 'training.checkpoint_every'),
    (("training.checkpoint_every = 'soon'",), 'training.checkpoint_every'),
    (('training.no_such_setting = 3',), 'no_such_setting'),
])
def test_bad_input_one_line_error(tmp_path, capsys, params, expect):
  """The entrypoint's own code path, in process (the CLI tests below cover
  the process exit status)."""
  from tf_tickets import runner as train  # pylint: disable=g-import-not-at-top
  status = train.execute(
      [os.path.join(cli.REPO, 'gin', 'lenet_imp.gin')],
      list(cli.FIXTURE_PARAMS + FAST + params), str(tmp_path / 'run'),
      quiet=True)
  assert status == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert err and err[-1].startswith('error: ') and expect in err[-1]
  assert not (tmp_path / 'run').exists()  # validated before it is created


def test_a_run_failing_before_training_leaves_nothing(tmp_path, capsys):
  """A check only the experiment makes (a stability level without its
  lottery run) fails after the run directory was created: it is removed;
  an existing empty directory is emptied again, not removed."""
  from tf_tickets import runner as train  # pylint: disable=g-import-not-at-top
  params = list(cli.FIXTURE_PARAMS + FAST + (
      'stability.level = 2', f"stability.lottery_dir = '{tmp_path / 'x'}'"))
  gin_file = os.path.join(cli.REPO, 'gin', 'lenet_stability.gin')
  assert train.execute([gin_file], params, str(tmp_path / 'run'),
                       quiet=True) == 1
  assert 'error: ' in capsys.readouterr().err
  assert not (tmp_path / 'run').exists()
  (tmp_path / 'mine').mkdir()
  assert train.execute([gin_file], params, str(tmp_path / 'mine'),
                       quiet=True) == 1
  assert os.listdir(tmp_path / 'mine') == []


@pytest.mark.slow
def test_cli_bad_input_exit_status(tmp_path):
  proc = cli.train(('gin/lenet_imp.gin',), FAST + (
      'lottery.pruning_fraction = 1.5',), f'--output_dir={tmp_path / "run"}',
                   '--quiet')
  assert proc.returncode == 1
  line = cli.last_line(proc)
  assert line.startswith('error: lottery.pruning_fraction'), proc.stderr[-3000:]
  assert 'Traceback' not in proc.stderr


@pytest.mark.slow
def test_cli_missing_and_broken_gin_files(tmp_path):
  proc = cli.run('tf_tickets.train', (str(tmp_path / 'nope.gin'),), (),
                 '--quiet')
  assert proc.returncode != 0
  assert cli.last_line(proc).startswith('error: --gin_file')
  bad = tmp_path / 'bad.gin'
  bad.write_text("training.steps = = 3\n")
  proc = cli.run('tf_tickets.train', (str(bad),), (), '--quiet')
  assert proc.returncode != 0
  line = cli.last_line(proc)
  assert line.startswith('error: ') and 'bad.gin' in line


@pytest.mark.slow
def test_cli_protects_existing_run_dirs(tmp_path):
  out = tmp_path / 'run'
  proc = cli.train(('gin/lenet_dense.gin',), FAST, f'--output_dir={out}',
                   '--quiet')
  assert proc.returncode == 0, proc.stderr[-2000:]
  before = snapshot(out)
  # A different configuration may not write into this run.
  other = cli.train(('gin/lenet_dense.gin',),
                    FAST + ('training.learning_rate = 0.1',),
                    f'--output_dir={out}', '--quiet')
  assert other.returncode != 0
  assert 'training.learning_rate' in cli.last_line(other)
  assert snapshot(out) == before
  # A directory that is not a run is refused too.
  stranger = tmp_path / 'stranger'
  stranger.mkdir()
  (stranger / 'notes.txt').write_text('mine')
  proc = cli.train(('gin/lenet_dense.gin',), FAST,
                   f'--output_dir={stranger}', '--quiet')
  assert proc.returncode != 0 and 'output_dir' in cli.last_line(proc)
  assert os.listdir(stranger) == ['notes.txt']


@pytest.mark.slow
def test_cli_corrupt_checkpoint_is_reported_not_destroyed(tmp_path):
  out = tmp_path / 'run'
  params = ('training.steps = 50', 'training.checkpoint_every = 10',
            'lottery.levels = 0')
  proc = cli.train(('gin/lenet_dense.gin',), params, f'--output_dir={out}',
                   '--quiet')
  assert proc.returncode == 0
  # Make the run unfinished again with a corrupt checkpoint.
  level = out / 'level_0'
  (level / 'result.json').unlink()
  ckpts = level / 'checkpoints'
  ckpts.mkdir()
  (ckpts / 'checkpoint').write_text(
      'model_checkpoint_path: "ckpt-10"\nall_model_checkpoint_paths: "ckpt-10"\n')
  (ckpts / 'ckpt-10.index').write_bytes(b'garbage')
  (ckpts / 'ckpt-10.data-00000-of-00001').write_bytes(b'garbage')
  before = snapshot(out)
  proc = cli.train(('gin/lenet_dense.gin',), params, f'--output_dir={out}',
                   '--quiet')
  assert proc.returncode != 0
  line = cli.last_line(proc)
  assert line.startswith('error: ') and 'ckpt-10' in line, proc.stderr[-2000:]
  assert snapshot(out) == before


def test_runner_success_path_in_process(tmp_path, capsys):
  """The entrypoint's success path (the fast set's twin of the CLI runs):
  exit 0, the run directory's files, the results table; a rerun has
  nothing to do."""
  from tf_tickets import runner  # pylint: disable=g-import-not-at-top
  gin_file = os.path.join(cli.REPO, 'gin', 'lenet_dense.gin')
  params = list(cli.FIXTURE_PARAMS + FAST + (
      'dataset.max_train_examples = 600', 'summaries.enabled = False'))
  out = tmp_path / 'run'
  assert runner.execute([gin_file], params, str(out), quiet=True) == 0
  printed = capsys.readouterr().out
  assert f'run directory: {out}' in printed
  assert printed.strip().splitlines()[-1] == (
      f'results: {out / "results.csv"}')
  for name in ('config.json', 'operative_config.gin', 'results.csv',
               'level_0/result.json', 'level_0/final/weights.index'):
    assert (out / name).exists(), name
  row, = rundir.read_results(str(out / 'results.csv'))
  assert int(row['steps']) == 30 and float(row['density']) == 1.0
  gin.clear_config()
  assert runner.execute([gin_file], params, str(out), quiet=True) == 0
  assert 'nothing to do' in capsys.readouterr().out


def test_run_identity_is_the_typed_settings_without_resumable_fields():
  """The run identity is the non-default fields of the typed settings,
  without the fields marked `settings.resumable` on their dataclasses: a
  resumable change keeps the fingerprint, a binding equal to the default
  changes nothing, any other change changes it."""
  from tf_tickets import settings  # pylint: disable=g-import-not-at-top
  gin_file = [os.path.join(cli.REPO, 'gin', 'lenet_imp.gin')]
  base = cli.settings(gin_file, ['lottery.levels = 3', 'summaries.every = 50',
                                 'training.steps = 123'])
  assert settings.resumable_settings() == {
      ('experiment', 'quiet'), ('export', 'formats'), ('export', 'quantize'),
      ('lottery', 'branch'), ('lottery', 'branch_levels'),
      ('lottery', 'branch_seed'), ('lottery', 'levels'),
      ('summaries', 'enabled'), ('summaries', 'every'),
      ('summaries', 'histograms'), ('summaries', 'mask_images'),
      ('summaries', 'image_every'), ('summaries', 'image_size'),
      ('training', 'checkpoint_every'), ('training', 'log_every'),
      ('training', 'steps_per_loop'), ('training', 'worker_timeout')}
  assert base.identity()['training.steps'] == '123'
  assert 'lottery.levels' not in base.identity()
  assert 'model.name' not in base.identity()  # the default
  fingerprint = base.fingerprint()
  assert fingerprint == '19dd7220'  # pinned: run directories keep resuming
  for same in (["lottery.levels = 7"], ["model.name = 'lenet_300_100'"],
               ["summaries.every = 10", "training.log_every = 5"]):
    assert cli.settings(gin_file, ['training.steps = 123'] + same
                        ).fingerprint() == fingerprint, same
  for other in (['training.steps = 124'], ['mlp.widths = (10, 10)'],
                ["model.name = 'lenet5'"], ['dataset.split_seed = 1']):
    assert cli.settings(gin_file, ['training.steps = 123'] + other
                        ).fingerprint() != fingerprint, other


def test_rigl_and_set_runs_name_their_mask_update_phase(tmp_path):
  """`sparse_training.begin_step` changed what RigL and SET do with its
  default: their identity always holds it, so a run directory stamped
  before it existed (the first update after step ΔT) is refused, not
  resumed in the new phase; other methods keep their fingerprints."""
  rigl = cli.settings([os.path.join(cli.REPO, 'gin', 'lenet_rigl.gin')], [])
  assert rigl.identity()['sparse_training.begin_step'] == '0'
  static = cli.settings([os.path.join(cli.REPO, 'gin', 'lenet_static.gin')],
                        [])
  assert 'sparse_training.begin_step' not in static.identity()
  old = dict(rigl.identity())
  del old['sparse_training.begin_step']
  run_dir = str(tmp_path / 'old_rigl')
  rundir.write_stamp(run_dir, old, 'oldphase', {}, '', '')
  with pytest.raises(tt.ConfigError, match='sparse_training.begin_step'):
    runner.check_run_dir(run_dir, rigl)


def test_settings_round_trip_through_config_json_with_own_functions(
    monkeypatch):
  """`RUN/config.json` keeps every setting; a user's function is stored by
  its import path and imported back (the export rebuilds the model)."""
  monkeypatch.syspath_prepend(os.path.join(cli.REPO, 'tests', 'plugins'))
  import own_models  # pylint: disable=g-import-not-at-top
  from tf_tickets import settings  # pylint: disable=g-import-not-at-top
  run_settings = cli.settings(
      [os.path.join(cli.REPO, 'tests', 'plugins', 'own_cnn.gin')],
      ['mlp.widths = (7, 5)'])
  stored = run_settings.to_json()
  assert stored['model']['builder'] == {'function': 'own_models.small_cnn'}
  assert run_settings.identity()['model.builder'] == (
      '{"function": "own_models.small_cnn"}')
  assert run_settings.identity()['mlp.widths'] == '[7, 5]'
  for namespace in ('dataset', 'model', 'training', 'lottery'):
    back = settings.from_json(namespace, stored[namespace])
    assert back == getattr(run_settings, namespace), namespace
  assert settings.from_json('model', stored['model']).builder is (
      own_models.small_cnn)
  with pytest.raises(tt.ConfigError, match=r'model\.builder.*lambda'):
    settings.from_json('model', dict(stored['model'],
                                     builder={'function': None}))
  with pytest.raises(tt.ConfigError, match=r'dataset\.nmae.*valid'):
    settings.from_json('dataset', stored['dataset'], {'nmae': 'x'})


def test_a_run_directory_stamped_by_the_gin_bindings_still_resumes(
    tmp_path):
  """Run directories written before the settings were typed stamp gin's
  bindings (defaults included, Python reprs): they are compared value by
  value, so the same configuration resumes and another is refused."""
  from tf_tickets import runner  # pylint: disable=g-import-not-at-top
  run_settings = cli.settings((), cli.FIXTURE_PARAMS)
  old = {"dataset.name": "'fashion_mnist'",
         "dataset.idx_dir": repr(cli.FIXTURE),
         "dataset.validation_examples": '500',
         "model.name": "'lenet_300_100'", "lottery.scope": "'layerwise'"}
  rundir.write_json(rundir.config_json_path(str(tmp_path)),
                    {'bindings': old, 'fingerprint': 'bd2a7df9'})
  runner.check_run_dir(str(tmp_path), run_settings)  # the same run
  with pytest.raises(tt.ConfigError, match='differs in: model.name'):
    runner.check_run_dir(str(tmp_path), cli.settings(
        (), cli.FIXTURE_PARAMS + ("model.name = 'lenet5'",)))


def test_own_config_puts_the_callers_gin_config_back():
  from tf_tickets import gin_config  # pylint: disable=g-import-not-at-top
  gin_config.parse_config((), ['training.steps = 321'])
  with gin_config.own_config():
    gin.clear_config()
    gin.parse_config('training.steps = 5\nlottery.levels = 2')
    assert gin.query_parameter('training.steps') == 5
  assert gin.query_parameter('training.steps') == 321
  with pytest.raises(ValueError):
    gin.query_parameter('lottery.levels')
