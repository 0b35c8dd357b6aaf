"""Damaged run directories: fall back to the newest checkpoint that reads,
retrain a network whose final/ does not read, one `error:` line otherwise;
files get the umask's permissions."""
import os
import stat

import numpy as np
import pytest
import tensorflow as tf

import cli
import tf_tickets as tt
from tf_tickets import data as data_lib
from tf_tickets import models
from tf_tickets import rundir
from tf_tickets import training


@pytest.fixture(scope='module')
def data():
  return data_lib.load_dataset('fashion_mnist', idx_dir=cli.FIXTURE,
                               validation_examples=500,
                               max_train_examples=600)


def _model(data):
  model = tt.wrap(models.build_for(data, seed=3))
  tt.prune_by_magnitude(model, 0.5)
  return model


def _trainer(data, net_dir, model=None, steps=30):
  config = training.TrainingConfig(steps=steps, eval_every=10,
                                   checkpoint_every=10)
  return training.Trainer(model or _model(data), data, config,
                          tf.distribute.get_strategy(), str(net_dir),
                          quiet=True)


def _truncate(prefix):
  for name in os.listdir(os.path.dirname(prefix)):
    path = os.path.join(os.path.dirname(prefix), name)
    if name.startswith(os.path.basename(prefix) + '.data'):
      with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)


def test_a_truncated_checkpoint_falls_back_to_the_previous_one(
    data, tmp_path):
  trainer = _trainer(data, tmp_path)
  for step in (10, 20):
    trainer.save_checkpoint(step)
  assert [os.path.basename(p) for p in rundir.checkpoint_prefixes(
      str(tmp_path))] == ['ckpt-20', 'ckpt-10']
  _truncate(os.path.join(rundir.checkpoints_dir(str(tmp_path)), 'ckpt-20'))
  again = _trainer(data, tmp_path)
  assert again.restore() == 10
  # The damaged files are set aside, the good one stays; training goes on.
  left = os.listdir(rundir.checkpoints_dir(str(tmp_path)))
  assert any(n.startswith('ckpt-20.data') and '.damaged-' in n for n in left)
  assert 'ckpt-10.index' in left
  assert again.fit()['steps'] == 30


def test_no_readable_checkpoint_is_one_error_naming_the_file(data, tmp_path):
  trainer = _trainer(data, tmp_path)
  trainer.save_checkpoint(10)
  _truncate(os.path.join(rundir.checkpoints_dir(str(tmp_path)), 'ckpt-10'))
  with pytest.raises(tt.TicketsError, match='ckpt-10 cannot be restored'):
    _trainer(data, tmp_path).restore()


def test_a_damaged_final_is_trained_again_to_the_same_weights(data, tmp_path):
  strategy = tf.distribute.get_strategy()
  config = training.TrainingConfig(steps=20, eval_every=10)
  model = _model(data)
  start = [v.numpy() for v in model.variables]
  first = training.train_network(model, data, config, strategy,
                                 str(tmp_path), quiet=True)
  trained = [v.numpy() for v in model.variables]
  _truncate(os.path.join(rundir.final_dir(str(tmp_path)), 'weights'))
  model = _model(data)
  for v, value in zip(model.variables, start):
    v.assign(value)
  again = training.train_network(model, data, config, strategy,
                                 str(tmp_path), quiet=True)
  assert again['test_accuracy'] == first['test_accuracy']
  for v, value in zip(model.variables, trained):
    np.testing.assert_array_equal(v.numpy(), value)
  assert any(n.startswith('final.damaged-') for n in os.listdir(tmp_path))
  with pytest.raises(tt.TicketsError, match='cannot read saved weights'):
    _truncate(os.path.join(rundir.final_dir(str(tmp_path)), 'weights'))
    rundir.load_weights(_model(data), rundir.final_dir(str(tmp_path)))


@pytest.mark.slow
def test_damaged_run_directory_never_ends_in_a_traceback(tmp_path):
  run = tmp_path / 'run'
  params = ('lottery.levels = 1', 'training.steps = 20',
            'training.eval_every = 10', 'summaries.enabled = False')
  proc = cli.train(('gin/lenet_imp.gin',), params, f'--output_dir={run}',
                   '--quiet')
  assert proc.returncode == 0, proc.stderr[-2000:]
  final = os.path.join(rundir.level_dir(str(run), 1), 'final')
  _truncate(os.path.join(final, 'weights'))
  export = cli.run('tf_tickets.export', (), (), f'--run_dir={run}',
                   '--level=1', '--quiet')
  assert export.returncode == 1
  assert 'Traceback' not in export.stderr
  assert cli.last_line(export).startswith('error: ')
  assert 'final' in cli.last_line(export)
  # The rerun trains level 1 again (deterministically) instead of failing.
  again = cli.train(('gin/lenet_imp.gin',), params, f'--output_dir={run}',
                    '--quiet')
  assert again.returncode == 0, again.stderr[-2000:]
  assert 'Traceback' not in again.stderr
  assert rundir.is_finished(rundir.level_dir(str(run), 1))


def test_files_and_directories_follow_the_umask(data, tmp_path):
  old = os.umask(0o022)
  try:
    path = str(tmp_path / 'a' / 'x.json')
    rundir.write_json(path, {'a': 1})
    model = _model(data)
    rundir.save_weights(model, str(tmp_path / 'w'))
  finally:
    os.umask(old)
  assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
  assert stat.S_IMODE(os.stat(tmp_path / 'a').st_mode) == 0o755
  assert stat.S_IMODE(os.stat(tmp_path / 'w').st_mode) == 0o755


def test_export_directories_follow_the_umask(tmp_path):
  from tf_tickets.export import outdir  # pylint: disable=g-import-not-at-top
  old = os.umask(0o022)
  try:
    tmp = outdir.prepare(str(tmp_path / 'export'))
  finally:
    os.umask(old)
  assert stat.S_IMODE(os.stat(tmp).st_mode) == 0o755
