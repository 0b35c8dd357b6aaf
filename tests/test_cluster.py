"""Two workers of one multi_worker_mirrored run on 127.0.0.1.

Each worker is a `python -m tf_tickets.train` process with its own TF_CONFIG
task and one CPU replica; they share --output_dir. The chief is the one
writer; the in-process MirroredStrategy run on the two logical CPUs of
conftest is the reference the two workers must reproduce bitwise.
"""
import glob
import os
import time

import numpy as np
import pytest
import tensorflow as tf
import cli
from tf_tickets import experiments
from tf_tickets import training

pytestmark = pytest.mark.slow

LOTTERY = ('training.steps = 16', 'training.eval_every = 8',
           'training.checkpoint_every = 3', 'lottery.levels = 1',
           'dataset.max_train_examples = 600')
RIGL = ('training.steps = 16', 'training.eval_every = 8',
        'training.checkpoint_every = 5', 'sparse_training.update_every = 4',
        'dataset.max_train_examples = 600')


def finals(run_dir):
  """{relative path of a final/ directory: {variable: array}}."""
  out = {}
  for index in sorted(glob.glob(os.path.join(run_dir, '**', 'final',
                                             'weights.index'),
                                recursive=True)):
    reader = tf.train.load_checkpoint(index[:-len('.index')])
    out[os.path.relpath(os.path.dirname(index), run_dir)] = {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name != '_CHECKPOINTABLE_OBJECT_GRAPH'}
  return out


def assert_same_finals(a, b):
  fa, fb = finals(a), finals(b)
  assert fa and sorted(fa) == sorted(fb)
  for net, variables in fa.items():
    assert sorted(variables) == sorted(fb[net]), net
    for name, value in variables.items():
      np.testing.assert_array_equal(value, fb[net][name], err_msg=net + name)


def assert_one_writer(run_dir, tmp):
  for root, _, files in os.walk(run_dir):
    events = [f for f in files if f.startswith('events.out.tfevents.')]
    assert len(events) <= 1, (root, events)
    assert not [f for f in files if '_temp' in f or f.startswith('.tmp-')]
  assert glob.glob(os.path.join(run_dir, 'level_*', 'events.out.tfevents.*'))
  assert not os.listdir(tmp)  # the non-chief's shadow is gone


def run_pair(gin_file, params, out, tmp):
  workers = cli.Workers(gin_file, params, out, tmpdir=tmp)
  (rc0, out0, err0), (rc1, out1, err1) = workers.wait()
  assert (rc0, rc1) == (0, 0), (err0[-3000:], err1[-3000:])
  assert 'workers agree: the final masks and weights are bitwise identical' \
      in out0
  assert 'worker 1 of 2: done' in out1
  assert 'results:' not in out1  # the chief reports
  return out0


@pytest.fixture(scope='module')
def lottery_pair(tmp_path_factory):
  base = tmp_path_factory.mktemp('pair')
  out, tmp = base / 'run', base / 'tmp'
  tmp.mkdir()
  run_pair('gin/lenet_imp.gin', LOTTERY, out, tmp)
  return out, tmp


def test_lottery_two_workers_one_writer_equals_mirrored(lottery_pair,
                                                         tmp_path):
  out, tmp = lottery_pair
  assert_one_writer(str(out), str(tmp))
  assert sorted(f for f in os.listdir(out / 'level_1')
                if 'tfevents' not in f) == ['final', 'result.json', 'start']
  # The same run in one process on two logical CPUs: bitwise equal.
  run_settings = cli.settings(
      [os.path.join(cli.REPO, 'gin', 'lenet_imp.gin')],
      list(cli.FIXTURE_PARAMS) + list(LOTTERY) +
      ["training.strategy = 'mirrored'"])
  rows = experiments.run(str(tmp_path / 'mirrored'), run_settings,
                         training.make_strategy('mirrored'), quiet=True)
  assert [r['level'] for r in rows] == [0, 1]
  assert_same_finals(str(out), str(tmp_path / 'mirrored'))


def test_rigl_two_workers(tmp_path):
  tmp = tmp_path / 'tmp'
  tmp.mkdir()
  run_pair('gin/lenet_rigl.gin', RIGL, tmp_path / 'run', tmp)
  assert_one_writer(str(tmp_path / 'run'), str(tmp))
  (net,) = finals(str(tmp_path / 'run'))
  assert net == os.path.join('level_0', 'final')


def test_sigkill_both_then_resume_is_bitwise_equal(lottery_pair, tmp_path):
  out, tmp = tmp_path / 'run', tmp_path / 'tmp'
  tmp.mkdir()
  workers = cli.Workers('gin/lenet_imp.gin', LOTTERY, out, tmpdir=tmp)
  workers.kill_when(str(out / 'level_1' / 'checkpoints' / '*.index'))
  workers.wait()
  assert glob.glob(str(out / 'level_1' / 'checkpoints' / '*.index'))
  assert not (out / 'level_1' / 'final').exists()
  run_pair('gin/lenet_imp.gin', LOTTERY, out, tmp)
  assert_same_finals(str(out), str(lottery_pair[0]))


def test_worker_that_loses_its_peer_fails_in_bounded_time(tmp_path):
  out = tmp_path / 'run'
  params = LOTTERY[:-1] + ('dataset.max_train_examples = 2000',
                           'training.steps = 400', 'training.eval_every = 50',
                           'training.checkpoint_every = 10',
                           'training.worker_timeout = 5')
  workers = cli.Workers('gin/lenet_imp.gin', params, out, timeout=150)
  workers.kill_when(str(out / 'level_0' / 'checkpoints' / '*.index'),
                    which=(1,))
  killed = time.time()
  (rc0, _, err0), _ = workers.wait()
  waited = time.time() - killed
  assert rc0 == 1, err0[-2000:]
  assert err0.strip().splitlines()[-1].startswith(
      'error: training.strategy: worker 0 of 2 lost its peers'), err0[-2000:]
  assert waited < 90, waited
  assert (out / 'config.json').exists()  # the run directory stays


def test_worker_alone_fails_at_start_in_bounded_time(tmp_path):
  out = tmp_path / 'run'
  start = time.time()
  workers = cli.Workers('gin/lenet_imp.gin', LOTTERY + (
      'training.worker_timeout = 3',), out, indices=(0,), timeout=90)
  ((rc, _, err),) = workers.wait()
  assert rc == 1, err[-2000:]
  assert err.strip().splitlines()[-1].startswith(
      'error: training.strategy: worker(s) 127.0.0.1:'), err[-2000:]
  assert 'did not start within training.worker_timeout = 3 s' in err
  assert time.time() - start < 60
  assert not out.exists()
