"""FLOPs accounting against hand computations (RigL paper, Appendix H)."""
import numpy as np
import pytest

import tf_tickets as tt
from tf_tickets import algorithms
from tf_tickets import flops
from tf_tickets import keras
from tf_tickets import masks as masks_lib
from tf_tickets import models


def test_lenet_300_100_by_hand():
  model = tt.wrap(models.build_model(input_shape=(28, 28, 1),
                                     num_classes=10))
  dense = 2 * (784 * 300 + 300 * 100 + 100 * 10)
  assert flops.inference_flops(model) == dense == 532_400
  masks_lib.init_masks(model, {'fc1': 0.9, 'fc2': 0.8, 'output': 0.5}, seed=0)
  sparse = 2 * (23_520 + 6_000 + 500)
  assert flops.inference_flops(model) == sparse
  r = flops.report(model)
  assert r['inference_flops_dense'] == dense
  assert r['inference_flops_fraction'] == pytest.approx(sparse / dense)
  assert r['training_flops_per_example'] == 3 * sparse
  # RigL with dT = 100: (3 f_S * 100 + 2 f_S + f_D) / 101.
  cfg = algorithms.SparseTrainingSettings(update_every=100, end_step=0.75)
  rigl = algorithms.RigL(cfg, {}, 0, algorithms.RunSteps(1000, 100))
  got = rigl.training_flops(flops.by_key(model), flops.by_key(model, True))
  assert got == pytest.approx((300 * sparse + 2 * sparse + dense) / 101)
  assert algorithms.SET(cfg, {}, 0, algorithms.RunSteps(1000, 100)).training_flops(
      flops.by_key(model), flops.by_key(model, True)) == 3 * sparse


def test_small_conv_net_by_hand():
  inp = keras.Input((8, 8, 1))
  x = keras.layers.Conv2D(4, 3, padding='same', name='conv')(inp)
  x = keras.layers.Conv2D(6, 3, strides=2, padding='same', name='conv2')(x)
  x = keras.layers.Flatten()(x)
  out = keras.layers.Dense(10, name='output')(x)
  model = tt.wrap(keras.Model(inp, out))
  conv = 2 * 3 * 3 * 1 * 4 * 64      # 8x8 outputs
  conv2 = 2 * 3 * 3 * 4 * 6 * 16     # 4x4 outputs (stride 2)
  fc = 2 * 96 * 10
  assert flops.by_key(model) == {'conv': conv, 'conv2': conv2, 'output': fc}


def test_gmp_training_flops_by_hand():
  """Dense for steps < 10, 50% from the pruning step 10 on, 90% from 20."""
  cfg = algorithms.SparseTrainingSettings(method='gmp', sparsity=0.9)
  gmp = algorithms.GMP(cfg, {'a': 0.9}, 0, algorithms.RunSteps(40, 10),
                       gmp=algorithms.GMPSettings(
                           begin_step=10, end_step=20, frequency=10,
                           power=1.0, initial_sparsity=0.5))
  dense = {'a': 100.0}
  want = 3 * 100.0 * (10 * 1.0 + 10 * 0.5 + 20 * 0.1) / 40
  assert gmp.training_flops({}, dense) == pytest.approx(want)
  assert np.isclose(gmp.sparsity_at('a', 10)[1], 0.5)


def test_an_embedding_is_a_lookup_and_costs_no_flops():
  inp = keras.Input((12,), dtype='int32')
  x = keras.layers.Embedding(50, 8, name='embed')(inp)
  x = keras.layers.Conv1D(4, 3, name='conv')(x)  # 10 positions
  x = keras.layers.GlobalMaxPooling1D()(x)
  out = keras.layers.Dense(2, name='out')(x)
  model = tt.wrap(keras.Model(inp, out))
  assert flops.by_key(model) == {'embed': 0, 'conv': 2 * 3 * 8 * 4 * 10,
                                 'out': 2 * 4 * 2}
