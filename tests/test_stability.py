"""The instability analysis (experiment.kind = 'stability')."""
import os

import numpy as np
import pytest
import tensorflow as tf

import cli
import events
from tf_tickets import experiments
from tf_tickets import rundir

BASE = ('training.steps = 12', 'training.eval_every = 6',
        'dataset.max_train_examples = 600', 'stability.points = 5',
        'stability.rewind_steps = (0, 4)', 'summaries.enabled = False')


def run(run_dir, gin_file, *params):
  return experiments.run(str(run_dir), cli.settings(
      [os.path.join(cli.REPO, 'gin', gin_file)],
      list(cli.FIXTURE_PARAMS) + list(BASE) + list(params)), quiet=True)


def test_same_data_order_gives_a_zero_barrier(tmp_path):
  rows = run(tmp_path, 'lenet_stability.gin', 'stability.data_seeds = (1, 1)')
  assert [r['k'] for r in rows] == [0, 4]
  for r in rows:
    assert r['error_barrier'] == 0.0 and len(set(r['errors'])) == 1


@pytest.mark.slow
def test_endpoints_are_the_trained_copies_and_results_are_written(tmp_path):
  rows = run(tmp_path, 'lenet_stability.gin')
  for r in rows:
    for i, end in ((0, r['errors'][0]), (1, r['errors'][-1])):
      copy = rundir.read_result(rundir.copy_dir(str(tmp_path), r['k'], i))
      assert end == pytest.approx(1.0 - copy['test_accuracy'], abs=1e-7)
      assert copy['steps'] == 12 and copy['early_stop_step'] >= r['k']
    assert r['error_barrier'] == pytest.approx(
        max(r['errors']) - (r['errors'][0] + r['errors'][-1]) / 2)
  csv_rows = rundir.read_results(rundir.results_path(str(tmp_path)))
  assert [int(r['k']) for r in csv_rows] == [0, 4]
  scalars = events.read_scalars(str(tmp_path))
  assert sorted(scalars['stability/error_barrier']) == [0, 4]
  assert sorted(scalars['stability/error_along_path/k_4']) == list(range(5))
  again = run(tmp_path, 'lenet_stability.gin')  # finished: nothing redone
  assert [r['errors'] for r in again] == [r['errors'] for r in rows]


@pytest.mark.slow
def test_ticket_masks_and_batchnorm_network(tmp_path):
  lottery_dir = tmp_path / 'lottery'
  run(lottery_dir, 'lenet_imp.gin', 'lottery.levels = 1')
  rows = run(tmp_path / 's', 'lenet_stability.gin', 'stability.level = 1',
             f"stability.lottery_dir = '{lottery_dir}'")
  copy = rundir.read_result(rundir.copy_dir(str(tmp_path / 's'), 4, 0))
  ticket = rundir.read_result(rundir.level_dir(str(lottery_dir), 1))
  assert copy['density'] == pytest.approx(ticket['density'])
  assert rows[0]['level'] == 1
  # ResNet-20 (BatchNorm): statistics recomputed at every point; the
  # endpoints stay close to the trained copies' own errors.
  rows = run(tmp_path / 'bn', 'lenet_stability.gin', "model.name = 'resnet20'",
             'resnet20.width = 4', 'dataset.batch_size = 20',
             'stability.rewind_steps = (4,)', 'stability.bn_batches = 10')
  r = rows[0]
  assert np.all(np.isfinite(r['errors'])) and r['error_barrier'] >= -1e-9
  copy = rundir.read_result(rundir.copy_dir(str(tmp_path / 'bn'), 4, 0))
  assert abs(r['errors'][0] - (1.0 - copy['test_accuracy'])) < 0.15


@pytest.mark.slow
def test_command_line_on_the_resnet20_config(tmp_path):
  """The ResNet-20 LTH config (on the fixture instead of CIFAR-10) as a
  stability analysis from the command line."""
  out = tmp_path / 'run'
  proc = cli.train(('gin/resnet20_imp_rewind.gin',), (
      "experiment.kind = 'stability'", 'resnet20.width = 4',
      'training.steps = 8', 'training.eval_every = 8',
      'dataset.batch_size = 20', 'dataset.max_train_examples = 200',
      'stability.rewind_steps = (2,)', 'stability.points = 3',
      'stability.bn_batches = 3', 'summaries.enabled = False'),
      f'--output_dir={out}', '--quiet')
  assert proc.returncode == 0, proc.stderr[-2000:]
  row, = rundir.read_results(rundir.results_path(str(out)))
  assert row['k'] == '2'
  path = rundir.read_json(rundir.stability_path(str(out), 2))
  errors = path['errors']
  assert len(errors) == 3 and all(0 <= e <= 1 for e in errors)
  assert float(row['error_barrier']) == pytest.approx(
      max(errors) - (errors[0] + errors[-1]) / 2, abs=1e-6)
  # The two copies trained on different data orders from theta_k: their
  # final weights differ (a copy that ignored its data seed would not).
  a, b = (tf.train.load_checkpoint(os.path.join(
      rundir.final_dir(rundir.copy_dir(str(out), 2, i)), 'weights'))
          for i in (0, 1))
  names = [n for n in a.get_variable_to_shape_map()
           if 'kernel' in n and 'OBJECT_GRAPH' not in n]
  assert names and any(
      not np.array_equal(a.get_tensor(n), b.get_tensor(n)) for n in names)


def test_lottery_run_of_another_network_is_refused(tmp_path):
  from tf_tickets.experiments import stability  # pylint: disable=g-import-not-at-top
  import tf_tickets as tt  # pylint: disable=g-import-not-at-top

  from tf_tickets import data as data_lib  # pylint: disable=g-import-not-at-top
  from tf_tickets import experiments  # pylint: disable=g-import-not-at-top

  base = experiments.RunSettings(
      dataset=data_lib.DatasetSettings(name='fashion_mnist'),
      lottery=experiments.lottery.LotterySettings(levels=3))

  class Ctx:
    run_dir = str(tmp_path / 'ours')
    settings = base.replace(
        experiment=experiments.ExperimentSettings(kind='stability'),
        dataset=data_lib.DatasetSettings(name='fashion_mnist', idx_dir='x'))

  def stamp(name, run_settings):
    rundir.write_stamp(str(tmp_path / name), run_settings.identity(), 'x',
                       run_settings.to_json())

  stamp('same', base)
  stability._check_same_network(Ctx, str(tmp_path / 'same'))  # accepted
  stamp('other', base.replace(training=base.training.replace(seed=1)))
  with pytest.raises(tt.ConfigError, match=r'stability\.lottery_dir.*seed'):
    stability._check_same_network(Ctx, str(tmp_path / 'other'))
