"""The prune-wrapper: structure, invariants under training, persistence."""

import numpy as np
import pytest
import tensorflow as tf

import tf_tickets as tt
from tf_tickets import keras
from tf_tickets import training
from tf_tickets.wrapper import TicketWrapper
from tf_tickets.wrapper import wrappers


def mlp(seed=0, l2=0.0):
  init = lambda i: keras.initializers.GlorotNormal(seed=seed + i)
  reg = keras.regularizers.l2(l2) if l2 else None
  inp = keras.Input((12,))
  x = keras.layers.Dense(32, activation='relu', name='fc1',
                         kernel_initializer=init(0), kernel_regularizer=reg)(inp)
  x = keras.layers.BatchNormalization(name='bn')(x)
  x = keras.layers.Dense(16, activation='relu', name='fc2',
                         kernel_initializer=init(1), kernel_regularizer=reg)(x)
  out = keras.layers.Dense(3, name='output', kernel_initializer=init(2))(x)
  return keras.Model(inp, out)


def convnet(seed=0):
  inp = keras.Input((8, 8, 3))
  x = keras.layers.Conv2D(8, 3, name='conv1', padding='same',
                          kernel_initializer=keras.initializers.HeNormal(seed))(inp)
  x = keras.layers.SeparableConv2D(8, 3, name='sep', padding='same')(x)
  x = keras.layers.DepthwiseConv2D(3, name='dw')(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  out = keras.layers.Dense(4, name='output')(x)
  return keras.Model(inp, out)


def batch(n=64, d=12, classes=3, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(n, d)).astype('float32'),
          rng.integers(0, classes, n).astype('int32'))


def pruned_entries(model):
  """Values of all pruned entries of all prunable weights (should be 0)."""
  out = []
  for wr in wrappers(model):
    for w, m in zip(wr.prunable_weights, wr.masks):
      out.append(w.numpy()[m.numpy() == 0])
  return np.concatenate(out)


def test_wrap_structure_theta0_and_outputs():
  base = mlp()
  x, _ = batch()
  model = tt.wrap(base)
  names = [l.name for l in model.layers]
  assert isinstance(model.layers[0], keras.layers.InputLayer)
  assert names[1:] == ['ticket_fc1', 'bn', 'ticket_fc2', 'ticket_output']
  wrs = wrappers(model)
  assert [w.layer.name for w in wrs] == ['fc1', 'fc2', 'output']
  for wr in wrs:
    assert len(wr.prunable_weights) == len(wr.masks) == len(
        wr.initial_values) == len(wr.rewind_values) == 1
    assert wr.prunable_weights[0].name.endswith('kernel:0')
    np.testing.assert_array_equal(wr.masks[0].numpy(), 1.0)
    orig = base.get_layer(wr.layer.name).kernel.numpy()
    np.testing.assert_array_equal(wr.initial_values[0].numpy(), orig)
  np.testing.assert_allclose(model(x), base(x), rtol=0, atol=0)
  # The original model is untouched and shares nothing with the copy.
  assert base.get_layer('fc1').kernel is not wrs[0].layer.kernel


def test_registry_decides_prunable_weights():
  model = tt.wrap(convnet())
  wrs = {w.layer.name: w for w in wrappers(model)}
  # DepthwiseConv2D has no prunable weights in tfmot's registry; the
  # SeparableConv2D's pointwise kernel is the prunable one; biases never.
  assert set(wrs) == {'conv1', 'sep', 'output'}
  assert wrs['sep'].prunable_weights[0].name.endswith('pointwise_kernel:0')
  assert not any('bias' in w.name for wr in wrs.values()
                 for w in wr.prunable_weights)


def test_custom_prunable_layer_protocol():
  import tensorflow_model_optimization as tfmot  # pylint: disable=g-import-not-at-top

  class Scale(keras.layers.Layer, tfmot.sparsity.keras.PrunableLayer):

    def build(self, shape):
      self.w = self.add_weight('w', shape=(shape[-1], 5))
      self.b = self.add_weight('b', shape=(5,))

    def call(self, x):
      return tf.matmul(x, self.w) + self.b

    def get_prunable_weights(self):
      return [self.w]

  inp = keras.Input((4,))
  model = tt.wrap(keras.Model(inp, Scale(name='scale')(inp)))
  (wr,) = wrappers(model)
  assert wr.prunable_weights[0].name.endswith('w:0')


def test_dense_layers_option_and_unknown_name():
  model = tt.wrap(mlp(), dense_layers=['output'])
  assert [w.layer.name for w in wrappers(model)] == ['fc1', 'fc2']
  with pytest.raises(ValueError, match='nope'):
    tt.wrap(mlp(), dense_layers=['nope'])


def test_nested_and_shared_layers():
  inner_in = keras.Input((6,))
  inner = keras.Model(inner_in, keras.layers.Dense(6, name='inner_fc')(inner_in),
                      name='block')
  shared = keras.layers.Dense(6, name='shared')
  inp = keras.Input((6,))
  x = shared(inp)
  x = inner(x)
  x = shared(x)
  out = keras.layers.Dense(2, name='output')(x)
  base = keras.Model(inp, out)
  model = tt.wrap(base)
  names = sorted(w.layer.name for w in wrappers(model))
  assert names == ['inner_fc', 'output', 'shared']
  x = np.random.default_rng(0).normal(size=(5, 6)).astype('float32')
  np.testing.assert_allclose(model(x), base(x), atol=1e-6)
  tt.prune_by_magnitude(model, 0.5)
  # The shared wrapper is one layer: one mask used at both call sites.
  report = tt.sparsity_report(model)
  assert report['layers']['shared']['active'] == 18


def test_sequential_model():
  base = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, name='a'),
                           keras.layers.Dense(2, name='b')])
  model = tt.wrap(base)
  assert isinstance(model, keras.Sequential)
  assert len(wrappers(model)) == 2


def test_keras3_objects_are_refused():
  import keras as keras3  # pylint: disable=g-import-not-at-top
  if not keras3.__version__.startswith('3'):
    pytest.skip('Keras 3 not installed')
  m = keras3.Sequential([keras3.Input((3,)), keras3.layers.Dense(2)])
  with pytest.raises(tt.KerasVersionError, match='tf_keras'):
    tt.wrap(m)
  with pytest.raises(tt.KerasVersionError, match='TF_USE_LEGACY_KERAS'):
    tt.sparsity_report(m)


@pytest.mark.parametrize('name', ['sgd', 'momentum', 'adam', 'adamw',
                                  'legacy_adam'])
def test_pruned_weights_stay_exactly_zero_every_step(name):
  model = tt.wrap(mlp(l2=1e-2))
  tt.prune_by_magnitude(model, 0.6)
  opt = {
      'sgd': lambda: keras.optimizers.SGD(0.1),
      'momentum': lambda: keras.optimizers.SGD(0.1, momentum=0.9),
      'adam': lambda: keras.optimizers.Adam(0.05),
      'adamw': lambda: keras.optimizers.AdamW(0.05, weight_decay=0.1),
      'legacy_adam': lambda: keras.optimizers.legacy.Adam(0.05),
  }[name]()
  x, y = batch()
  loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  masks_before = [m.numpy().copy() for wr in wrappers(model) for m in wr.masks]
  survivors_before = [w.numpy()[m.numpy() > 0] for wr in wrappers(model)
                      for w, m in zip(wr.prunable_weights, wr.masks)]

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      loss = loss_fn(y, model(x, training=True)) + tf.add_n(model.losses)
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))

  for _ in range(5):
    step()
    vals = pruned_entries(model)
    assert vals.size > 0
    assert np.all(vals == 0.0), f'{name}: pruned weights moved'
  # Survivors did train, masks did not change.
  masks_after = [m.numpy() for wr in wrappers(model) for m in wr.masks]
  for a, b in zip(masks_before, masks_after):
    np.testing.assert_array_equal(a, b)
  survivors_after = [w.numpy()[m.numpy() > 0] for wr in wrappers(model)
                     for w, m in zip(wr.prunable_weights, wr.masks)]
  for a, b in zip(survivors_before, survivors_after):
    assert np.mean(a != b) > 0.5, f'{name}: survivors did not train'

  # model.fit keeps the invariant too.
  model.compile(opt, loss_fn)
  model.fit(x, y, epochs=2, batch_size=16, verbose=0)
  assert np.all(pruned_entries(model) == 0.0)


def test_strip_parity_and_plain_layers():
  model = tt.wrap(mlp())
  tt.prune_by_magnitude(model, 0.7)
  x, _ = batch()
  plain = tt.strip(model)
  assert not any(isinstance(l, TicketWrapper) for l in plain.layers)
  np.testing.assert_array_equal(plain(x), model(x))
  k = plain.get_layer('fc1').kernel.numpy()
  assert np.count_nonzero(k) == tt.sparsity_report(model)['layers']['fc1'][
      'active']


def test_checkpoint_round_trip_keeps_masks_and_theta0(tmp_path):
  model = tt.wrap(mlp(seed=1))
  tt.prune_by_magnitude(model, 0.5)
  tt.set_rewind_point(model)
  ckpt = tf.train.Checkpoint(model=model).write(str(tmp_path / 'ck'))
  other = tt.wrap(mlp(seed=2))
  tf.train.Checkpoint(model=other).read(ckpt).assert_existing_objects_matched()
  for a, b in zip(wrappers(model), wrappers(other)):
    for va, vb in zip(a.masks + a.initial_values + a.rewind_values +
                      a.prunable_weights,
                      b.masks + b.initial_values + b.rewind_values +
                      b.prunable_weights):
      np.testing.assert_array_equal(va.numpy(), vb.numpy())


def test_savedmodel_round_trip(tmp_path):
  model = tt.wrap(mlp())
  tt.prune_by_magnitude(model, 0.8)
  x, _ = batch()
  path = str(tmp_path / 'sm')
  model.save(path)
  loaded = keras.models.load_model(path)
  np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
  for a, b in zip(wrappers(model), wrappers(loaded)):
    np.testing.assert_array_equal(a.masks[0].numpy(), b.masks[0].numpy())
    np.testing.assert_array_equal(a.initial_values[0].numpy(),
                                  b.initial_values[0].numpy())
  # The loaded wrapper keeps pruned weights at zero when trained further.
  loaded.compile(keras.optimizers.Adam(0.05),
                 keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  loaded.fit(*batch(), epochs=1, verbose=0)
  assert np.all(pruned_entries(loaded) == 0.0)
  # As a plain SavedModel (serving signature), outputs match too.
  tf.saved_model.save(model, str(tmp_path / 'raw'))
  raw = tf.saved_model.load(str(tmp_path / 'raw'))
  np.testing.assert_allclose(raw(x), model(x), atol=1e-6)


def test_sparsity_report_counts():
  model = tt.wrap(mlp())
  tt.prune_by_magnitude(model, 0.25)
  rep = tt.sparsity_report(model)
  sizes = {'fc1': 12 * 32, 'fc2': 32 * 16, 'output': 16 * 3}
  for k, n in sizes.items():
    assert rep['layers'][k]['params'] == n
    assert rep['layers'][k]['active'] == n - round(0.25 * n)
  assert rep['params'] == sum(sizes.values())
  assert rep['density'] == pytest.approx(rep['active'] / rep['params'])
  # all_params counts every model weight once (biases, BN) but no masks.
  assert rep['all_params'] == mlp().count_params()


def test_one_mirrored_strategy_per_process(mirrored):
  """A second MirroredStrategy in the process would collide with the first
  one's collective instances ("Shape mismatch in the collective instance"),
  so every caller gets the same one, whatever its worker_timeout."""
  assert training.make_strategy('mirrored') is mirrored
  assert training.make_strategy('mirrored', worker_timeout=5.0) is mirrored


def test_mirrored_strategy_training_keeps_invariants(mirrored):
  with mirrored.scope():
    model = tt.wrap(mlp(l2=1e-3))
    opt = keras.optimizers.Adam(0.05)
  tt.prune_by_magnitude(model, 0.5)
  masks = [m.numpy().copy() for wr in wrappers(model) for m in wr.masks]
  x, y = batch(n=64)
  ds = mirrored.experimental_distribute_dataset(
      tf.data.Dataset.from_tensor_slices((x, y)).batch(32).repeat())
  it = iter(ds)
  loss_fn = keras.losses.SparseCategoricalCrossentropy(
      from_logits=True, reduction=keras.losses.Reduction.NONE)

  @tf.function
  def step(it):
    def replica(xb, yb):
      with tf.GradientTape() as tape:
        loss = tf.nn.compute_average_loss(loss_fn(yb, model(xb, training=True)),
                                          global_batch_size=32)
        loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
      grads = tape.gradient(loss, model.trainable_variables)
      opt.apply_gradients(zip(grads, model.trainable_variables))
    mirrored.run(replica, args=next(it))

  for _ in range(4):
    step(it)
  for wr, m0 in zip(wrappers(model), masks):
    w, m = wr.prunable_weights[0], wr.masks[0]
    for w_rep, m_rep in zip(w.values, m.values):  # every replica
      np.testing.assert_array_equal(m_rep.numpy(), m0)
      assert np.all(w_rep.numpy()[m0 == 0] == 0.0)
    np.testing.assert_array_equal(w.values[0].numpy(), w.values[1].numpy())
  # Pruning in cross-replica context gives identical masks on every replica.
  tt.prune_by_magnitude(model, 0.5, scope='global')
  for wr in wrappers(model):
    a, b = (v.numpy() for v in wr.masks[0].values)
    np.testing.assert_array_equal(a, b)
    assert np.all(wr.prunable_weights[0].values[1].numpy()[a == 0] == 0.0)


def test_mirrored_wrap_and_strip(mirrored):
  with mirrored.scope():
    model = tt.wrap(mlp())
  tt.prune_by_magnitude(model, 0.5)
  x, _ = batch()
  plain = tt.strip(model)
  np.testing.assert_allclose(plain(x), model(x), atol=1e-6)
  assert not wrappers(plain)  # plain layers, masks baked into the kernels
  for wr in wrappers(model):
    kernel = plain.get_layer(wr.layer.name).kernel.numpy()
    mask = wr.masks[0].numpy()
    assert 0 < mask.mean() < 1
    assert np.all(kernel[mask == 0] == 0.0)
    np.testing.assert_array_equal(kernel, wr.prunable_weights[0].numpy())


def test_mirrored_masks_rewind_and_checkpoint(mirrored, tmp_path):
  with mirrored.scope():
    model = tt.wrap(mlp(seed=3))
  tt.init_masks(model, 'erk', seed=1, sparsity=0.7)
  tt.prune_randomly(model, {'fc2': 0.5}, seed=2)
  tt.set_rewind_point(model)
  tt.prune_by_magnitude(model, 0.3)
  tt.rewind(model, 'rewind_point')
  for wr in wrappers(model):
    for v in wr.masks + wr.prunable_weights + wr.rewind_values:
      a, b = (c.numpy() for c in v.values)
      np.testing.assert_array_equal(a, b)
    w, m, r = (wr.prunable_weights[0].numpy(), wr.masks[0].numpy(),
               wr.rewind_values[0].numpy())
    np.testing.assert_array_equal(w, r * m)
  # A checkpoint written under the strategy restores without it.
  path = tf.train.Checkpoint(model=model).write(str(tmp_path / 'ck'))
  plain = tt.wrap(mlp(seed=4))
  tf.train.Checkpoint(model=plain).read(path).assert_existing_objects_matched()
  x, _ = batch()
  np.testing.assert_allclose(plain(x), model(x), atol=1e-6)
  assert tt.sparsity_report(plain)['active'] == tt.sparsity_report(model)[
      'active']
