"""tf_tickets in `model.fit`: the Keras callbacks on your own model."""
import os

import numpy as np
import pytest
import tensorflow as tf

import cli
import tf_tickets as tt
from tf_tickets import data as data_lib
from tf_tickets import distributions
from tf_tickets import masks as masks_lib
from tf_tickets import models
from tf_tickets import training
from tf_tickets.keras import keras


@pytest.fixture(scope='module')
def data():
  return data_lib.load_dataset('fashion_mnist', idx_dir=cli.FIXTURE,
                               validation_examples=500,
                               max_train_examples=600)


class Invariants(keras.callbacks.Callback):
  """After every step: pruned weights exactly 0; at every mask change,
  newly grown weights and their optimizer slots exactly 0."""

  def __init__(self):
    super().__init__()
    self.changes = []

  def on_train_begin(self, logs=None):
    self.prev = masks_lib.get_masks(self.model)  # the starting masks

  def on_train_batch_end(self, batch, logs=None):
    model = self.model
    masks = masks_lib.get_masks(model)
    weights = masks_lib.get_weights(model)
    for k, m in masks.items():
      assert np.all(weights[k][m == 0] == 0.0), (k, batch)
    if self.prev is not None and any(
        not np.array_equal(masks[k], self.prev[k]) for k in masks):
      step = int(model.optimizer.iterations.numpy())
      for k, (wr, i) in masks_lib.entries_of(model).items():
        new = (masks[k] > 0) & (self.prev[k] == 0)
        var = wr.prunable_weights[i]
        assert np.all(var.numpy()[new] == 0.0), (k, step)
        for slot in training.optimizer_slots(model.optimizer, var):
          assert np.all(slot.numpy()[new] == 0.0), (k, step, slot.name)
      self.changes.append(step)
    self.prev = masks


def lenet(data, seed=0, steps_per_execution=1):
  model = tt.wrap(models.build_for(data, seed=seed))
  model.compile(keras.optimizers.Adam(1e-3),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=['accuracy'], steps_per_execution=steps_per_execution)
  return model


def train_ds(data, seed=0):
  return data_lib.train_dataset(data, seed)


def exact_counts(model, settings):
  """Each layer's active count is its target's exactly."""
  shapes = masks_lib.weight_shapes(model)
  want = distributions.nonzeros(
      shapes, tt.pruning.target_sparsities(model, settings))
  got = {k: int(np.count_nonzero(m))
         for k, m in masks_lib.get_masks(model).items()}
  assert got == want


def test_rigl_in_model_fit_keeps_the_invariants_and_exact_sparsity(
    data, tmp_path):
  model = lenet(data)
  rigl = tt.callbacks.SparseTraining(
      method='rigl', sparsity=0.9, update_every=10, end_step=0.8,
      data=train_ds(data, seed=1), log_dir=str(tmp_path / 'logs'))
  check = Invariants()
  model.fit(train_ds(data), epochs=1, steps_per_epoch=60, verbose=0,
            callbacks=[rigl, check])
  r = rigl.result
  # Global steps 0, 10, ..., 40 < 48 (rigl's phase: the first at step 1).
  assert r['method'] == 'rigl' and r['mask_updates'] == 5
  assert check.changes == [1, 11, 21, 31, 41]
  assert 0 < r['churn'] < 1 and r['steps'] == 60
  exact_counts(model, rigl.settings)
  assert r['density'] == pytest.approx(0.1, abs=1e-3)
  # The same dashboards as a CLI run: sparsity curves and update figures.
  tags = set(_scalar_tags(str(tmp_path / 'logs')))
  assert {'train/loss', 'sparse_training/churn'} <= tags
  assert any(t.startswith('sparsity/density/') or t.startswith('density/')
             for t in tags), sorted(tags)


def _scalar_tags(log_dir):
  tags = []
  for path in tf.io.gfile.glob(log_dir + '/events.out.tfevents.*'):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tags.append(value.tag)
  return tags


def test_skip_update_on_mask_steps_keeps_the_weights_of_that_step(data):
  """RigL's update replaces the step's weight update: at an update step a
  connection active before and after keeps its value."""
  model = lenet(data)
  seen = {}

  class Record(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      step = int(self.model.optimizer.iterations.numpy())
      seen[step] = (masks_lib.get_masks(self.model),
                    masks_lib.get_weights(self.model))

  rigl = tt.callbacks.SparseTraining(
      method='rigl', sparsity=0.9, update_every=10, end_step=0.8,
      data=train_ds(data, seed=1))
  model.fit(train_ds(data), epochs=1, steps_per_epoch=30, verbose=0,
            callbacks=[rigl, Record()])
  for step in (11, 21):  # global steps 10 and 20
    (m0, w0), (m1, w1) = seen[step - 1], seen[step]
    moved = 0
    for k in m0:
      both = (m0[k] > 0) & (m1[k] > 0)
      np.testing.assert_array_equal(w1[k][both], w0[k][both])
    (m0, w0), (m1, w1) = seen[step], seen[step + 1]
    for k in m0:
      moved += int(np.count_nonzero(w1[k] != w0[k]))
    assert moved > 0  # the next step does update


def test_steps_per_execution_must_end_calls_on_mask_updates(data):
  model = lenet(data, steps_per_execution=4)
  bad = tt.callbacks.SparseTraining(method='set', sparsity=0.9,
                                    update_every=10, end_step=0.8,
                                    skip_update_on_mask_steps=False)
  with pytest.raises(tt.ConfigError, match='sparse_training.update_every'):
    model.fit(train_ds(data), epochs=1, steps_per_epoch=20, verbose=0,
              callbacks=[bad])
  # The reference phase (an update at the first step) ends no call.
  first = tt.callbacks.SparseTraining(method='set', sparsity=0.9,
                                      update_every=8, end_step=0.8,
                                      skip_update_on_mask_steps=False)
  with pytest.raises(tt.ConfigError, match='sparse_training.begin_step'):
    model.fit(train_ds(data), epochs=1, steps_per_epoch=20, verbose=0,
              callbacks=[first])
  good = tt.callbacks.SparseTraining(method='set', sparsity=0.9,
                                     update_every=8, begin_step=7,
                                     end_step=0.8,
                                     skip_update_on_mask_steps=False)
  check = Invariants()
  model.fit(train_ds(data), epochs=1, steps_per_epoch=20, verbose=0,
            callbacks=[good, check])
  # global steps 7 and 15 < 16
  assert good.result['mask_updates'] == 2 and check.changes == [8, 16]


def test_rewind_point_callback_saves_theta_k(data):
  model = lenet(data)
  seen = {}

  class Record(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      if int(self.model.optimizer.iterations.numpy()) == 7:
        seen['w7'] = masks_lib.get_weights(self.model)

  model.fit(train_ds(data), epochs=1, steps_per_epoch=12, verbose=0,
            callbacks=[tt.callbacks.RewindPoint(7), Record()])
  rewind = masks_lib.get_weights(model, 'rewind')
  for k, w in seen['w7'].items():
    np.testing.assert_array_equal(rewind[k], w)


def _text_model():
  inputs = keras.Input((24,), dtype='int32')
  h = keras.layers.Embedding(200, 16, name='embed')(inputs)
  h = keras.layers.Conv1D(32, 3, activation='relu', name='conv')(h)
  h = keras.layers.GlobalMaxPooling1D()(h)
  outputs = keras.layers.Dense(3, name='out')(h)
  return keras.Model(inputs, outputs)


def _tokens(n=512):
  rng = np.random.default_rng(0)
  x = rng.integers(0, 200, (n, 24)).astype(np.int32)
  y = (x[:, :4].sum(axis=1) % 3).astype(np.int32)
  return x, y


def test_gmp_text_classifier_exports_with_its_integer_input(tmp_path):
  """GMP through model.fit on integer tokens, then the export keeps the
  int32 input signature and passes its parity and LiteRT checks."""
  x, y = _tokens()
  model = tt.wrap(_text_model())
  model.compile('adam', keras.losses.SparseCategoricalCrossentropy(
      from_logits=True))
  gmp = tt.callbacks.SparseTraining(
      method='gmp', sparsity=0.8, distribution='uniform',
      dense_first_layer=False,
      gmp=tt.algorithms.GMPSettings(begin_step=4, end_step=24, frequency=4))
  model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), epochs=1,
            verbose=0, callbacks=[gmp])
  exact_counts(model, gmp.settings)
  assert gmp.result['mask_updates'] == 5  # 8, ..., 24 (s(4) = 0)
  assert set(masks_lib.get_masks(model)) == {'embed', 'conv', 'out'}
  report = tt.export.export_model(model, str(tmp_path / 'out'),
                                  (x[:100], y[:100]), quiet=True)
  assert report['passed'] and report['input']['dtype'] == 'int32'
  assert report['input']['name'] == 'inputs'
  loaded = tf.saved_model.load(str(tmp_path / 'out' / 'saved_model'))
  sig = loaded.signatures['serving_default']
  spec = sig.structured_input_signature[1]['inputs']
  assert spec.dtype == tf.int32 and spec.shape.as_list() == [None, 24]
  np.testing.assert_allclose(
      sig(inputs=tf.constant(x[:8]))['logits'].numpy(),
      tt.strip(model)(x[:8]).numpy(), rtol=1e-5, atol=1e-5)
  tflite = [a for a in report['artifacts'] if a['name'] == 'float32.tflite']
  assert tflite and tflite[0]['parity']['agreement'] == 1.0


@pytest.mark.slow
def test_mobilenet_v2_trains_with_rigl_in_model_fit_and_exports(tmp_path):
  """tf_keras.applications.MobileNetV2 (BatchNorm, residual adds,
  depthwise convolutions) with RigL callbacks on a tf.data pipeline: exact target
  sparsity per layer, pruned weights 0 after every step, export parity."""
  rng = np.random.default_rng(0)
  x = rng.integers(0, 256, (256, 32, 32, 3)).astype(np.uint8)
  y = (x[:, :16, :16, 0].mean(axis=(1, 2)) > 127).astype(np.int32) + (
      x[:, 16:, 16:, 1].mean(axis=(1, 2)) > 127).astype(np.int32)
  base = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3),
                                        classes=3, classifier_activation=None)
  model = tt.wrap(base)
  model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  ds = tf.data.Dataset.from_tensor_slices(
      (x.astype(np.float32) / 255.0, y)).shuffle(256, seed=0).batch(32)
  rigl = tt.callbacks.SparseTraining(method='rigl', sparsity=0.8,
                                     update_every=4, end_step=0.75,
                                     data=ds)
  check = Invariants()
  model.fit(ds.repeat(), steps_per_epoch=16, epochs=1, verbose=0,
            callbacks=[rigl, check])
  assert check.changes == [1, 5, 9]  # global steps 0, 4, 8 < 12
  exact_counts(model, rigl.settings)
  # tfmot's prune registry lists no prunable weight of DepthwiseConv2D
  # (3x3 per channel): it stays dense, as under prune_low_magnitude.
  kinds = {type(wr.layer).__name__ for wr in tt.wrapper.wrappers(model)}
  assert kinds == {'Conv2D', 'Dense'}
  report = tt.export.export_model(
      model, str(tmp_path / 'out'),
      (x[:64].astype(np.float32) / 255.0, y[:64]), quiet=True)
  assert report['passed'], report['failures']


def test_lottery_driver_on_your_own_model_and_training(tmp_path):
  """Two IMP levels of a text classifier trained by the user's own fit,
  rewound to step 6 (late rewinding): the run directory of the command
  line, exact pruning, theta_k restored, a rerun trains nothing."""
  x, y = _tokens()
  ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
  calls = []

  def build():
    keras.utils.set_random_seed(1)
    return _text_model()

  def train(model, level):
    calls.append((level.level, level.start_step))
    if level.level > 0:  # every surviving weight starts at theta_6
      w = masks_lib.get_weights(model)
      rewind = masks_lib.get_weights(model, 'rewind')
      masks = masks_lib.get_masks(model)
      for k in w:
        np.testing.assert_array_equal(w[k], rewind[k] * masks[k])
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=['accuracy'])
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(level.start_step)
    model.fit(ds, epochs=1, verbose=0, callbacks=level.callbacks)
    return {'test_accuracy': float(model.evaluate(ds, verbose=0)[1])}

  out = tmp_path / 'run'
  rows = tt.run_lottery(build, train, out, levels=2, pruning_fraction=0.5,
                        rewind='6it', layer_fractions={'out': 0.25})
  assert calls == [(0, 0), (1, 6), (2, 6)]
  assert [r['level'] for r in rows] == [0, 1, 2]
  shapes = {'embed': 200 * 16, 'conv': 3 * 16 * 32, 'out': 32 * 3}
  for row in rows:
    level = row['level']
    for key, n in shapes.items():
      want = n
      for _ in range(level):
        want -= round((0.5 if key != 'out' else 0.25) * want)
      assert round(row['layer_density'][key] * n) == want, (key, level)
    assert 0 <= row['test_accuracy'] <= 1
  results = tt.rundir.read_results(str(out / 'results.csv'))
  assert [int(r['level']) for r in results] == [0, 1, 2]
  for level in range(3):
    assert tt.rundir.is_finished(str(out / f'level_{level}'))
    assert tf.io.gfile.glob(str(out / f'level_{level}' /
                                'events.out.tfevents.*'))
  calls.clear()
  again = tt.run_lottery(build, train, out, levels=2, pruning_fraction=0.5,
                         rewind='6it', layer_fractions={'out': 0.25})
  assert calls == [] and [r['density'] for r in again] == [
      r['density'] for r in rows]
  # The random_prune control on the same run directory (a branch only
  # extends the run): levels 1 and 2 again, random masks of the ticket's
  # per-layer counts, from the same rewind point.
  calls.clear()
  both = tt.run_lottery(build, train, out, levels=2, pruning_fraction=0.5,
                        rewind='6it', layer_fractions={'out': 0.25},
                        branch='random_prune')
  assert calls == [(1, 6), (2, 6)]
  control = [r for r in both if r['branch'] == 'random_prune']
  assert [r['level'] for r in control] == [1, 2]
  for ticket, ctrl in zip(rows[1:], control):
    assert ctrl['layer_density'] == ticket['layer_density']
  branch_dirs = tf.io.gfile.glob(str(out / 'branch_*'))
  assert len(branch_dirs) == 1
  start = lambda d: tf.train.load_checkpoint(os.path.join(
      d, 'level_2', 'start', 'weights'))
  ticket_masks = {n: start(str(out)).get_tensor(n) for n in
                  start(str(out)).get_variable_to_shape_map() if 'mask' in n}
  assert ticket_masks and any(
      not np.array_equal(m, start(branch_dirs[0]).get_tensor(n))
      for n, m in ticket_masks.items())


def test_readme_own_model_snippets_run_verbatim(tmp_path):
  """The README's "Use it on your own model" code blocks, as written, in
  a fresh process."""
  import os  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  text = open(os.path.join(cli.REPO, 'README.md')).read()
  section = text.split('## Use it on your own model', 1)[1].split('\n## ', 1)[0]
  blocks = re.findall(r'```python\n(.*?)```', section, re.S)
  assert len(blocks) == 2
  proc = subprocess.run([sys.executable, '-c', '\n'.join(blocks)],
                        cwd=tmp_path, env=cli.env(), capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  density, updates = next(l for l in lines
                          if re.fullmatch(r'[0-9.]+ [0-9]+', l)).split()
  assert abs(float(density) - 0.1) < 0.01 and int(updates) > 0
  assert [line.split()[0] for line in lines[-4:]] == ['0', '1', '2', '3']
  assert (tmp_path / 'export' / 'rigl' / 'float32.tflite').exists()
  assert (tmp_path / 'runs' / 'my_lottery' / 'results.csv').exists()


@pytest.mark.slow
def test_model_fit_and_the_command_line_loop_find_the_same_masks(
    data, tmp_path):
  """LeNet-300-100, RigL for 600 steps on the fixture, scoring growth on
  the same fixed batch (grow_batch_size): the Trainer of the command line
  and model.fit with the callback, from the same start and data order,
  end with bitwise the same masks and weights (skipped updates at mask
  steps included)."""
  settings = dict(method='rigl', sparsity=0.9, update_every=50,
                  end_step=0.75, grow_batch_size=100)
  cfg = tt.algorithms.SparseTrainingSettings(**settings)
  config = training.TrainingConfig(
      steps=600, optimizer='adam', learning_rate=1e-3, eval_every=600,
      jit_compile=False, checkpoint_every=10**6)
  masks = {}
  for path in ('cli', 'fit'):
    model = tt.wrap(models.build_for(data, seed=0))
    algorithm = tt.algorithms.make(
        cfg, tt.pruning.target_sparsities(model, cfg), 0,
        training.run_steps(config, data.steps_per_epoch),
        masks_lib.weight_shapes(model))
    if path == 'cli':
      tt.pruning.initialize_masks(model, algorithm)
      training.Trainer(model, data, config, tf.distribute.get_strategy(),
                       str(tmp_path / path), quiet=True,
                       hooks=[training.MaskHook(algorithm)]).fit()
    else:
      model.compile(keras.optimizers.Adam(1e-3), keras.losses.
                    SparseCategoricalCrossentropy(from_logits=True))
      rigl = tt.callbacks.SparseTraining(
          data=(data.x_train, data.y_train), steps=600, **settings)
      model.fit(data_lib.train_dataset(data, config.seed), epochs=1,
                steps_per_epoch=600, verbose=0, callbacks=[rigl])
    masks[path] = masks_lib.get_masks(model)
    masks[path + '_w'] = masks_lib.get_weights(model)
  for k in masks['cli']:
    np.testing.assert_array_equal(masks['cli'][k], masks['fit'][k])
    np.testing.assert_array_equal(masks['cli_w'][k], masks['fit_w'][k])


def test_rigl_in_model_fit_under_mirrored_strategy(data, mirrored):
  """Two replicas: after every step the masks and weights are identical
  on both and pruned weights are 0 on each; the mask updates happen."""
  seen = []

  class Replicas(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      for wr in tt.wrapper.wrappers(self.model):
        for w, m in zip(wr.prunable_weights, wr.masks):
          (w0, w1), (m0, m1) = ([r.numpy() for r in v.values]
                                for v in (w, m))
          np.testing.assert_array_equal(m0, m1)
          np.testing.assert_array_equal(w0, w1)
          assert np.all(w0[m0 == 0] == 0.0)
      seen.append(batch)

  with mirrored.scope():
    model = lenet(data)
  rigl = tt.callbacks.SparseTraining(
      method='rigl', sparsity=0.9, update_every=5, end_step=0.8,
      data=train_ds(data, seed=1))
  model.fit(train_ds(data), epochs=1, steps_per_epoch=16, verbose=0,
            callbacks=[rigl, Replicas()])
  assert rigl.result['mask_updates'] == 3 and len(seen) == 16  # 1, 6, 11
  exact_counts(model, rigl.settings)


@pytest.mark.parametrize('method', ['set', 'static', 'snip'])
def test_every_method_runs_in_model_fit(data, method):
  model = lenet(data)
  cb = tt.callbacks.SparseTraining(method=method, sparsity=0.8,
                                   update_every=5, end_step=0.8,
                                   data=train_ds(data, seed=1))
  check = Invariants()
  model.fit(train_ds(data), epochs=1, steps_per_epoch=12, verbose=0,
            callbacks=[cb, check])
  exact_counts(model, cb.settings)
  assert cb.result['method'] == method
  assert check.changes == ([1, 6] if method == 'set' else [])


def test_steps_per_execution_with_a_short_last_call(data):
  """22 steps in calls of 4: Keras shortens the last call to 2 steps; the
  step count follows Keras' batch index (updates at 8 and 16, 22 steps)."""
  model = lenet(data, steps_per_execution=4)
  cb = tt.callbacks.SparseTraining(method='set', sparsity=0.9,
                                   update_every=8, begin_step=7, end_step=0.8,
                                   skip_update_on_mask_steps=False)
  check = Invariants()
  model.fit(train_ds(data), epochs=1, steps_per_epoch=22, verbose=0,
            callbacks=[cb, check])
  assert check.changes == [8, 16] and cb.result['steps'] == 22
  model = lenet(data, steps_per_execution=4)
  with pytest.raises(tt.ConfigError,
                     match='sparse_training.skip_update_on_mask_steps'):
    model.fit(train_ds(data), epochs=1, steps_per_epoch=8, verbose=0,
              callbacks=[tt.callbacks.SparseTraining(
                  method='rigl', sparsity=0.9, update_every=4,
                  data=train_ds(data))])


def test_snip_in_model_fit_scores_on_a_batch_of_the_data(data):
  """A `.batch(n)` dataset (no static batch size): SNIP prunes before the
  first step on n examples, to the exact counts."""
  x, y = data.x_train.astype(np.float32), data.y_train
  ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(50)
  model = lenet(data)
  snip = tt.callbacks.SparseTraining(method='snip', sparsity=0.8, data=ds)
  model.fit(ds, epochs=1, verbose=0, callbacks=[snip])
  exact_counts(model, snip.settings)
  assert snip.result['density'] == pytest.approx(0.2, abs=1e-3)


def test_sparse_training_checkpoint_keeps_its_format(data, tmp_path):
  """The checkpointed bookkeeping is float32 0/1 in the weights' shapes,
  as before it became a `Bookkeeping` (older runs resume)."""
  model = lenet(data)
  cfg = tt.algorithms.SparseTrainingSettings(method='rigl', sparsity=0.9)
  config = training.TrainingConfig(steps=10)
  algorithm = tt.algorithms.make(
      cfg, tt.pruning.target_sparsities(model, cfg), 0,
      training.run_steps(config, data.steps_per_epoch),
      masks_lib.weight_shapes(model))
  hook = training.MaskHook(algorithm)
  trainer = training.Trainer(model, data, config,
                             tf.distribute.get_strategy(), str(tmp_path),
                             hooks=[hook], quiet=True)
  saved = trainer.checkpoint.hook_0
  shapes = masks_lib.weight_shapes(model)
  for group in (saved.start_masks, saved.grown):
    assert [(v.dtype, tuple(v.shape)) for v in group] == [
        (tf.float32, s) for s in shapes.values()]
  assert saved.counters.dtype == tf.int64


def test_run_lottery_refuses_a_rewind_point_that_was_never_saved(tmp_path):
  x, y = _tokens(128)

  def train(model, level):  # a loop that ignores level.callbacks
    del level
    model.compile('adam', keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    model.fit(x, y, epochs=1, shuffle=False, verbose=0)

  with pytest.raises(tt.ConfigError, match='rewind'):
    tt.run_lottery(_text_model, train, tmp_path / 'run', levels=1,
                   rewind='6it')


def test_scoring_data_is_read_only_when_a_hook_asks(data):
  """The callback reads `data` when a hook first scores on it, not when
  training begins: static masks never read it; SNIP (which scores a fixed
  batch at the start) reads its first batches, up to 10,000 examples."""
  reads = []

  def examples():
    for i in range(10**6):
      reads.append(i)
      yield data.x_train[:60].astype(np.float32), data.y_train[:60]

  spec = (tf.TensorSpec((60, 28, 28, 1), tf.float32),
          tf.TensorSpec((60,), tf.int64))
  stream = tf.data.Dataset.from_generator(examples, output_signature=spec)
  model = lenet(data)
  model.fit(train_ds(data).take(5), epochs=1, verbose=0, callbacks=[
      tt.callbacks.SparseTraining(method='static', sparsity=0.9, steps=5,
                                  data=stream)])
  assert not reads
  model = lenet(data)
  model.fit(train_ds(data).take(5), epochs=1, verbose=0, callbacks=[
      tt.callbacks.SparseTraining(method='snip', sparsity=0.9, steps=5,
                                  data=stream, grow_batch_size=60)])
  assert 10000 / 60 <= len(reads) <= 10000 / 60 + 3
