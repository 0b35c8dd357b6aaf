"""Magnitude and random pruning, initial masks, rewinding."""
import numpy as np
import pytest

import tf_tickets as tt
from tf_tickets import keras
from tf_tickets import masks as pruning
from tf_tickets.wrapper import wrappers


def model(seed=0):
  init = lambda i: keras.initializers.GlorotNormal(seed=seed + i)
  inp = keras.Input((20,))
  x = keras.layers.Dense(30, name='fc1', kernel_initializer=init(0))(inp)
  x = keras.layers.Dense(10, name='fc2', kernel_initializer=init(1))(x)
  out = keras.layers.Dense(4, name='output', kernel_initializer=init(2))(x)
  return tt.wrap(keras.Model(inp, out))


def active(m):
  return {k: int(r['active']) for k, r in
          tt.sparsity_report(m)['layers'].items()}


SIZES = {'fc1': 600, 'fc2': 300, 'output': 40}


def test_layerwise_exact_counts_over_rounds_and_overrides():
  m = model()
  expected = dict(SIZES)
  for _ in range(4):
    pruned = tt.prune_by_magnitude(m, 0.2, fractions={'output': 0.1})
    for k in expected:
      f = 0.1 if k == 'output' else 0.2
      n = int(round(f * expected[k]))
      assert pruned[k] == n
      expected[k] -= n
    assert active(m) == expected


def test_magnitude_order_zeroing_and_no_revival():
  m = model()
  w0 = pruning.get_weights(m)['fc1'].copy()
  tt.prune_by_magnitude(m, 0.5)
  mask = pruning.get_masks(m)['fc1']
  kept, dropped = np.abs(w0[mask == 1]), np.abs(w0[mask == 0])
  assert kept.min() >= dropped.max()
  assert np.all(pruning.get_weights(m)['fc1'][mask == 0] == 0.0)
  # Weights that were pruned stay pruned, even if they become large.
  wr = wrappers(m)[0]
  wr.layer.kernel.assign(np.where(mask == 0, 100.0, 0.001).astype('float32'))
  tt.prune_by_magnitude(m, 0.5)
  mask2 = pruning.get_masks(m)['fc1']
  assert np.all(mask2[mask == 0] == 0)
  assert mask2.sum() == 150


def test_deterministic_ties_by_index():
  m = model()
  for wr in wrappers(m):
    wr.prunable_weights[0].assign(np.ones(wr.prunable_weights[0].shape))
  tt.prune_by_magnitude(m, 0.25)
  flat = pruning.get_masks(m)['fc1'].reshape(-1)
  # Equal magnitudes: the lowest flat indices go first.
  assert np.all(flat[:150] == 0) and np.all(flat[150:] == 1)


def test_global_scope_pools_layers():
  m = model()
  for i, wr in enumerate(wrappers(m)):
    # fc1 has the smallest weights, so global pruning takes it first.
    scale = [1e-6, 1.0, 1.0][i]
    w = wr.prunable_weights[0]
    w.assign(w * scale)
  pruned = tt.prune_by_magnitude(m, 0.5, scope='global')
  assert sum(pruned.values()) == round(0.5 * sum(SIZES.values()))
  assert pruned['fc1'] == 470 and pruned['fc2'] == 0
  # Layerwise on the same weights prunes each layer by half.
  m2 = model()
  for i, wr in enumerate(wrappers(m2)):
    w = wr.prunable_weights[0]
    w.assign(w * [0.01, 1.0, 1.0][i])
  assert tt.prune_by_magnitude(m2, 0.5)['fc2'] == 150


def test_global_with_override_and_skip():
  m = model()
  pruned = tt.prune_by_magnitude(m, 0.4, scope='global',
                                 fractions={'output': 0.1}, skip=['fc2'])
  assert pruned['fc2'] == 0
  assert pruned['output'] == 4
  assert pruned['fc1'] == 240  # alone in the global pool


def test_bad_arguments_name_the_setting():
  m = model()
  with pytest.raises(ValueError, match='lottery.pruning_fraction'):
    tt.prune_by_magnitude(m, 1.0)
  with pytest.raises(ValueError, match='lottery.scope'):
    tt.prune_by_magnitude(m, 0.2, scope='blockwise')
  with pytest.raises(ValueError, match='nope'):
    tt.prune_by_magnitude(m, 0.2, fractions={'nope': 0.1})


def test_prune_randomly_same_densities_deterministic():
  m = model()
  tt.prune_randomly(m, {'fc1': 0.9, 'fc2': 0.5, 'output': 0.0}, seed=3)
  assert active(m) == {'fc1': 60, 'fc2': 150, 'output': 40}
  a = pruning.get_masks(m)
  m2 = model()
  tt.prune_randomly(m2, {'fc1': 0.9, 'fc2': 0.5, 'output': 0.0}, seed=3)
  b = pruning.get_masks(m2)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  tt.prune_randomly(m2, {'fc1': 0.9}, seed=4)
  assert not np.array_equal(pruning.get_masks(m2)['fc1'], a['fc1'])
  assert np.all(pruning.get_weights(m2)['fc1'][
      pruning.get_masks(m2)['fc1'] == 0] == 0.0)


def test_init_masks_from_distribution():
  m = model()
  s = tt.init_masks(m, 'erk', seed=0, sparsity=0.8)
  counts = active(m)
  total = sum(SIZES.values())
  assert abs(sum(counts.values()) - 0.2 * total) <= len(SIZES)
  for k, n in SIZES.items():
    assert counts[k] == round((1 - s[k]) * n)
  m2 = model()
  tt.init_masks(m2, 'uniform', seed=0, sparsity=0.8, custom={'fc1': 0.0})
  assert active(m2) == {'fc1': 600, 'fc2': 60, 'output': 8}


def test_rewind_to_init_and_rewind_point():
  m = model()
  theta0 = pruning.get_weights(m, 'initial')
  x = np.random.default_rng(0).normal(size=(8, 20)).astype('float32')
  m.compile(keras.optimizers.Adam(0.1),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  m.fit(x, np.arange(8) % 4, epochs=2, verbose=0)
  tt.set_rewind_point(m)
  thetak = pruning.get_weights(m, 'rewind')
  m.fit(x, np.arange(8) % 4, epochs=2, verbose=0)
  tt.prune_by_magnitude(m, 0.5)
  masks = pruning.get_masks(m)
  tt.rewind(m, 'init')
  for k, w in pruning.get_weights(m).items():
    np.testing.assert_array_equal(w, theta0[k] * masks[k])
  tt.rewind(m, 'rewind_point')
  for k, w in pruning.get_weights(m).items():
    np.testing.assert_array_equal(w, thetak[k] * masks[k])
    assert not np.array_equal(thetak[k], theta0[k])
  with pytest.raises(ValueError, match='rewind_point'):
    tt.rewind(m, 'somewhere')


def test_reinitialize_draws_a_fresh_init_same_distribution():
  m = model()
  tt.prune_by_magnitude(m, 0.5)
  masks = pruning.get_masks(m)
  theta0 = pruning.get_weights(m, 'initial')
  pruning.reinitialize(m, seed=7)
  new0 = pruning.get_weights(m, 'initial')
  for k in masks:
    assert not np.allclose(new0[k], theta0[k])
    # Same initializer family: similar scale (Glorot normal).
    assert np.std(new0[k]) == pytest.approx(np.std(theta0[k]), rel=0.3)
    np.testing.assert_array_equal(pruning.get_weights(m)[k],
                                  new0[k] * masks[k])
  np.testing.assert_array_equal(pruning.get_masks(m)['fc1'], masks['fc1'])


def test_rewind_restores_biases_and_batchnorm_too():
  inp = keras.Input((6,))
  x = keras.layers.Dense(5, name='fc1', bias_initializer='ones',
                         activation='relu')(inp)
  x = keras.layers.BatchNormalization(name='bn')(x)
  out = keras.layers.Dense(3, name='output')(x)
  m = tt.wrap(keras.Model(inp, out), dense_layers=['output'])
  before = {v.name: v.numpy().copy() for v in m.weights}
  x_batch = np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32)
  m.compile(keras.optimizers.SGD(0.5), 'mse')
  m.fit(x_batch, np.ones((32, 3)), epochs=3, verbose=0)
  tt.set_rewind_point(m)
  theta_k = {v.name: v.numpy().copy() for v in m.weights}
  changed = [n for n in ('ticket_fc1/bias:0', 'bn/gamma:0', 'bn/moving_mean:0',
                         'output/kernel:0', 'output/bias:0')
             if not np.array_equal(theta_k[n], before[n])]
  assert len(changed) == 5  # all trained (or updated statistics)
  tt.prune_by_magnitude(m, 0.5)
  tt.rewind(m, 'init')
  mask = pruning.get_masks(m)['fc1']
  for v in m.weights:
    if v.name == 'ticket_fc1/kernel:0':
      np.testing.assert_array_equal(v.numpy(), before[v.name] * mask)
    elif not any(p in v.name for p in ('/mask_', '/rewind_', 'tt_')):
      np.testing.assert_array_equal(v.numpy(), before[v.name], v.name)
  m.fit(x_batch, np.ones((32, 3)), epochs=1, verbose=0)
  tt.rewind(m, 'rewind_point')
  for name in changed:
    want = theta_k[name] * (mask if name == 'ticket_fc1/kernel:0' else 1)
    np.testing.assert_array_equal(
        [v for v in m.weights if v.name == name][0].numpy(), want)
