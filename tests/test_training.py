"""The training loop: early stopping at the best validation loss, start
steps (late rewinding)."""
import os

import numpy as np
import pytest
import tensorflow as tf

import cli
import tf_tickets as tt
from tf_tickets import algorithms
from tf_tickets import data as data_lib
from tf_tickets import masks as masks_lib
from tf_tickets import models
from tf_tickets import training
from tf_tickets.training import compiled


@pytest.fixture(scope='module')
def data():
  return data_lib.load_dataset('fashion_mnist', idx_dir=cli.FIXTURE,
                               validation_examples=500,
                               max_train_examples=600)


class Record(training.Hook):
  """Copies the weights at every validation."""

  def __init__(self):
    self.at = {}

  def after_eval(self, ctx, step, metrics):
    assert set(metrics) == {'step', 'val_loss', 'val_accuracy'}
    self.at[step] = (metrics['val_loss'],
                     [v.numpy().copy() for v in ctx.model.weights])


def test_early_stopping_keeps_the_best_state_and_tests_it_once(
    data, tmp_path, monkeypatch):
  model = tt.wrap(models.build_for(data))
  tt.prune_by_magnitude(model, 0.5)
  config = training.TrainingConfig(steps=40, eval_every=5,
                                   learning_rate=0.05)  # noisy on purpose
  record = Record()
  trainer = training.Trainer(model, data, config,
                             tf.distribute.get_strategy(), str(tmp_path),
                             hooks=[record], quiet=True)
  splits = []
  evaluate = trainer.evaluate
  monkeypatch.setattr(trainer, 'evaluate',
                      lambda split: splits.append(split) or evaluate(split))
  result = trainer.fit()
  assert sorted(record.at) == list(range(0, 41, 5))
  best = min(record.at, key=lambda s: record.at[s][0])
  # The test set: once for the final state, once more for the best state
  # unless that is the final one.
  assert splits.count('test') == (1 if best == 40 else 2), splits
  assert result['early_stop_step'] == best
  assert result['early_stop_val_loss'] == pytest.approx(record.at[best][0])
  final = [v.numpy() for v in model.weights]
  for v, value in zip(model.weights, record.at[40][1]):
    np.testing.assert_array_equal(v.numpy(), value)  # final state is kept
  for v, value in zip(model.weights, record.at[best][1]):
    v.assign(value)
  assert result['early_stop_test_accuracy'] == evaluate('test')[1]
  for v, value in zip(model.weights, final):
    v.assign(value)
  assert result['test_accuracy'] == evaluate('test')[1]
  assert best != 40 or result['early_stop_test_accuracy'] == (
      result['test_accuracy'])


def test_start_step_continues_the_schedule_and_data(data, tmp_path):
  """Training from step k equals the last T-k steps of a run from 0 whose
  state at k is the start (fresh optimizer state in both)."""
  def build():
    m = tt.wrap(models.build_for(data))
    return m
  config = training.TrainingConfig(steps=12, eval_every=12,
                                   optimizer='sgd', learning_rate=0.1,
                                   lr_schedule='step', lr_milestones=(8,))
  a = build()
  trainer = training.Trainer(a, data, config, tf.distribute.get_strategy(),
                             str(tmp_path / 'a'), quiet=True, start_step=6)
  assert trainer.lr.value(6) == pytest.approx(0.1)
  assert trainer.lr.value(8) == pytest.approx(0.01)
  result = trainer.fit()
  assert result['steps'] == 12 and int(trainer.optimizer.iterations) == 6
  # Plain SGD has no state: 6 steps from 0 then 6 from k=6 = 12 from 0.
  b = build()
  training.Trainer(b, data, config.replace(steps=6, lr_milestones=(100,)),
                   tf.distribute.get_strategy(), str(tmp_path / 'b'),
                   quiet=True).fit()
  masks_lib.set_rewind_point(b)
  c = build()
  training.Trainer(c, data, config, tf.distribute.get_strategy(),
                   str(tmp_path / 'c'), quiet=True).fit()
  b_cont = training.Trainer(b, data, config, tf.distribute.get_strategy(),
                            str(tmp_path / 'b2'), quiet=True, start_step=6)
  b_cont.fit()
  for vb, vc in zip(b.trainable_variables, c.trainable_variables):
    np.testing.assert_allclose(vb.numpy(), vc.numpy(), rtol=1e-5, atol=1e-6)


def _rigl_run(data, path, **config_changes):
  """A short RigL run (mask updates every 7 steps) from a fixed start; the
  final weights and masks."""
  model = tt.wrap(models.build_for(data, seed=1))
  cfg = algorithms.SparseTrainingSettings(method='rigl', sparsity=0.8,
                                          update_every=7, end_step=0.8)
  algorithm = algorithms.make(cfg, tt.pruning.target_sparsities(model, cfg),
                              0, algorithms.RunSteps(45, data.steps_per_epoch))
  tt.init_masks(model, algorithm.sparsities, seed=0)
  config = training.TrainingConfig(steps=45, eval_every=20, log_every=9,
                                   checkpoint_every=100).replace(
                                       **config_changes)
  trainer = training.Trainer(model, data, config,
                             tf.distribute.get_strategy(), str(path),
                             hooks=[training.MaskHook(algorithm)], quiet=True)
  result = trainer.fit()
  return trainer, result, [v.numpy() for v in model.variables]


def test_steps_per_loop_does_not_change_the_run(data, tmp_path):
  """Several steps per compiled call, with mask updates, logs and
  evaluations on their own steps: bitwise the run of one step per call."""
  _, one, a = _rigl_run(data, tmp_path / 'one', steps_per_loop=1)
  _, many, b = _rigl_run(data, tmp_path / 'many', steps_per_loop=100)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert one['test_accuracy'] == many['test_accuracy']
  assert one['early_stop_step'] == many['early_stop_step']


class Events(training.Hook):
  """Events at steps 5 and 11; records the steps after_step sees."""

  def __init__(self):
    self.seen = []

  def next_event(self, step):
    return 5 if step < 5 else (11 if step < 11 else step + 1000)

  def after_step(self, ctx, step, grads):
    self.seen.append(step)


def test_the_loop_stops_on_every_hook_event(data, tmp_path):
  events = Events()
  model = tt.wrap(models.build_for(data))
  config = training.TrainingConfig(steps=30, eval_every=30, log_every=30,
                                   checkpoint_every=30, steps_per_loop=100)
  training.Trainer(model, data, config, tf.distribute.get_strategy(),
                   str(tmp_path), hooks=[events], quiet=True).fit()
  # The events, the end, and (one device: batches gathered in the compiled
  # loop, one epoch per call) the epoch ends: 600 examples / 60 = 10 steps.
  assert {5, 11, 30} <= set(events.seen) <= {5, 10, 11, 20, 30}


def test_mask_updates_run_inside_the_compiled_loop_on_one_device(
    data, tmp_path):
  """On one device a chunk ending on a mask update is one compiled call
  whose last step returns the dense gradients: RigL compiles one loop and
  no separate update step."""
  trainer, _, _ = _rigl_run(data, tmp_path)
  assert trainer.steps.on_device
  assert trainer.steps.built == [('loop', True)]


def test_a_step_xla_cannot_compile_falls_back_to_the_plain_step(
    data, tmp_path, monkeypatch):
  real = compiled.CompiledSteps._train_steps

  def fails_under_xla(self, *args, **kwargs):
    fn = real(self, *args, **kwargs)
    if not self.jit_compile:
      return fn

    def call(*args):
      del args
      raise tf.errors.InvalidArgumentError(
          None, None, 'Detected unsupported operations when trying to '
          'compile graph with XLA')
    return call

  monkeypatch.setattr(compiled.CompiledSteps, '_train_steps', fails_under_xla)
  trainer, _, fell_back = _rigl_run(data, tmp_path / 'a')
  assert not trainer.steps.jit_compile and not trainer.context.jit
  monkeypatch.undo()
  _, _, plain = _rigl_run(data, tmp_path / 'b', jit_compile=False)
  for x, y in zip(fell_back, plain):
    np.testing.assert_array_equal(x, y)


def test_xla_auto_is_off_for_convolutions_on_cpu():
  """Measured on this CPU: XLA speeds LeNet-300-100 up 3.2x and slows
  Conv-6 down about 100x (docs/benchmarks.md)."""
  for name, expected in (('lenet_300_100', True), ('conv6', False),
                         ('resnet20', False)):
    model = tt.wrap(models.build_model(name, input_shape=(32, 32, 3),
                                       num_classes=10))
    assert training.config.use_xla('auto', model) is expected, name
    assert training.config.use_xla(False, model) is False
  with pytest.raises(tt.ConfigError, match='training.jit_compile'):
    training.TrainingConfig(jit_compile='yes')


def test_evaluation_on_the_device_equals_the_dataset_path(
    data, tmp_path, monkeypatch):
  """One compiled call over the split held on the device (full batches,
  then the remainder) gives the loss and accuracy of the whole split, as
  the per-batch dataset path (used with several replicas) does."""
  monkeypatch.setattr(data_lib, 'EVAL_BATCH', 128)  # 500 = 3 * 128 + 116
  model = tt.wrap(models.build_for(data, seed=3))
  tt.prune_by_magnitude(model, 0.5)
  del tmp_path
  strategy = tf.distribute.get_strategy()
  evaluate = training.Evaluator(model, data, strategy, jit_compile=True)
  assert evaluate.on_device
  logits = model(data.x_val.astype(np.float32), training=False).numpy()
  shifted = logits - logits.max(-1, keepdims=True)
  log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
  expected_loss = -log_p[np.arange(len(logits)), data.y_val].mean()
  expected_acc = float(np.mean(logits.argmax(-1) == data.y_val))
  loss, acc = evaluate('val')
  assert acc == expected_acc
  assert loss == pytest.approx(expected_loss, rel=1e-5)
  per_batch = training.Evaluator(model, data, strategy)
  per_batch.on_device = False  # the path of several replicas
  assert per_batch('val') == pytest.approx((loss, acc), rel=1e-6)
  for v in model.trainable_weights:  # reads the current weights
    v.assign(tf.zeros_like(v))
  assert evaluate('val') == pytest.approx(  # logits 0: class 0
      (np.log(10.0), float(np.mean(data.y_val == 0))))


def test_a_killed_workers_private_copy_is_replaced_when_it_runs_again(
    tmp_path, monkeypatch):
  import tempfile  # pylint: disable=g-import-not-at-top
  from tf_tickets.training import cluster  # pylint: disable=g-import-not-at-top
  tmp = tmp_path / 'tmp'
  tmp.mkdir()
  monkeypatch.setattr(tempfile, 'tempdir', str(tmp))
  run = tmp_path / 'run'
  (run / 'level_0').mkdir(parents=True)
  (run / 'level_0' / 'result.json').write_text('{}')
  first = cluster.make_shadow(str(run), 1)
  with open(os.path.join(first, 'private.txt'), 'w') as f:
    f.write('written by a worker that was then killed')
  again = cluster.make_shadow(str(run), 1)
  assert again == first and os.listdir(tmp) == [os.path.basename(first)]
  assert sorted(os.listdir(again)) == ['level_0']  # the stale file is gone
  assert os.path.islink(os.path.join(again, 'level_0', 'result.json'))
  other = cluster.make_shadow(str(run), 2)  # another worker: its own copy
  assert other != first and len(os.listdir(tmp)) == 2


@pytest.mark.parametrize('value,seconds,steps', [
    ('60s', 60.0, None), ('5min', 300.0, None), ('1.5h', 5400.0, None),
    (1000, None, 1000), ('2ep', None, 20)])
def test_checkpoint_interval_by_wall_time_or_steps(value, seconds, steps):
  config = training.TrainingConfig(steps=100, checkpoint_every=value)
  sched = training.resolve_schedule(config, steps_per_epoch=10)
  assert (sched.checkpoint_seconds, sched.checkpoint_every) == (seconds, steps)


def test_checkpoint_interval_default_is_wall_time():
  assert training.TrainingConfig().checkpoint_every == '60s'
  for bad in ('0s', '-1min', '1 day', 's', True):
    with pytest.raises(Exception, match=r'training.checkpoint_every: expected '
                       r'a positive duration like "60s"'):
      training.TrainingConfig(checkpoint_every=bad)
