"""Structured tickets and the compact export (issue 34): the compact model
equals the masked model; unit and refill masks keep exact counts."""
import json

import numpy as np
import pytest

import cli
import tf_tickets as tt
from tf_tickets import algorithms
from tf_tickets import data as data_lib
from tf_tickets import masks as masks_lib
from tf_tickets import models
from tf_tickets import rundir
from tf_tickets import structure
from tf_tickets.experiments import lottery
from tf_tickets.export import compact as compact_lib
from tf_tickets.keras import keras

L = keras.layers


def _perturbed(model, seed, positive=False):
  """Non-zero biases and BatchNorm statistics, so removed units carry
  constants that must be folded."""
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    if layer.weights:
      noise = [rng.normal(size=w.shape).astype(np.float32) * 0.3
               for w in layer.get_weights()]
      if positive:
        noise = [np.abs(n) for n in noise]
      layer.set_weights([w + n for w, n in zip(layer.get_weights(), noise)])
  return model


def mlp():
  inputs = keras.Input((20,))
  h = L.Dense(16, activation='relu', name='a')(inputs)
  h = L.Dropout(0.1)(h)
  h = L.Dense(12, activation='relu', name='b')(h)
  return _perturbed(keras.Model(inputs, L.Dense(3, name='out')(h)), 0)


def conv_bn():
  inputs = keras.Input((12, 12, 2))
  h = L.Conv2D(8, 3, padding='same', name='c1')(inputs)
  h = L.BatchNormalization(name='bn1')(h)
  h = L.ReLU()(h)
  h = L.MaxPooling2D()(h)
  h = L.Conv2D(6, 3, padding='same', activation='relu', name='c2')(h)
  h = L.Conv2D(5, 3, padding='valid', activation='relu', name='c3')(h)
  h = L.Flatten()(h)
  h = L.Dense(10, activation='relu', name='d1')(h)
  return _perturbed(keras.Model(inputs, L.Dense(3, name='out')(h)), 1,
                    positive=True)


def residual():
  inputs = keras.Input((8, 8, 3))
  stem = L.Conv2D(8, 3, padding='same', name='stem')(inputs)
  h = L.Conv2D(8, 3, padding='same', activation='relu', name='r1')(stem)
  h = L.Conv2D(8, 3, padding='same', name='r2')(h)
  h = L.ReLU()(L.Add()([stem, h]))
  h = L.GlobalAveragePooling2D()(h)
  return _perturbed(keras.Model(inputs, L.Dense(3, name='out')(h)), 2)


def _empty_units(model, units):
  """Sets the masks of a wrapped model: `units` key -> units emptied."""
  masks = masks_lib.get_masks(model)
  for key, drop in units.items():
    masks[key][..., list(drop)] = 0
  masks_lib.set_masks(model, masks)


def flatten_relu_no_bias():
  """Flatten -> ReLU -> Dense (a per-channel layer after the Flatten), a
  Dense without bias that receives constants, as a Sequential model."""
  return _perturbed(keras.Sequential([
      keras.Input((6, 6, 2)), L.Conv2D(5, 3, name='c1'), L.Flatten(),
      L.ReLU(), L.Dense(8, use_bias=False, name='d1'), L.ReLU(),
      L.Dense(3, name='out')]), 4, positive=True)


CASES = {
    # build, input shape, key -> emptied units, key -> compact width
    'mlp': (mlp, (20,), {'a': [1, 4, 5, 9], 'b': [0, 11]},
            {'a': 12, 'b': 10, 'out': 3}),
    'conv_bn': (conv_bn, (12, 12, 2), {'c1': [0, 3, 7], 'c2': [2],
                                       'c3': [1, 4], 'd1': [5]},
                {'c1': 5, 'c2': 5, 'c3': 3, 'd1': 9, 'out': 3}),
    'flatten_relu_no_bias': (flatten_relu_no_bias, (6, 6, 2),
                             {'c1': [0, 3], 'd1': [2]},
                             {'c1': 3, 'd1': 7, 'out': 3}),
    # Channels 1 and 2 are empty in both branches of the add; 5 (stem) and
    # 6 (r2) in one only, so they stay.
    'residual': (residual, (8, 8, 3), {'stem': [1, 2, 5], 'r2': [1, 2, 6],
                                       'r1': [0, 3]},
                 {'stem': 6, 'r1': 6, 'r2': 6, 'out': 3}),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_compact_model_equals_the_masked_model(case):
  build, shape, emptied, want = CASES[case]
  model = tt.wrap(build())
  _empty_units(model, emptied)
  rng = np.random.default_rng(3)
  x = rng.normal(size=(64,) + shape).astype(np.float32)
  smaller, report = compact_lib.compact_model(model, x[:32])
  assert {k: r['width_after'] for k, r in report['layers'].items()} == want
  masked = np.asarray(model(x, training=False))
  got = np.asarray(smaller(x, training=False))  # inputs it never saw
  assert np.max(np.abs(got - masked)) <= 1e-5 * np.max(np.abs(masked))
  assert report['parity']['max_rel'] <= 1e-5
  assert report['macs_after'] < report['macs_before']


def test_same_padding_constants_go_into_a_position_bias():
  """A removed channel's constant seen through 'same' padding differs at
  the border: it is folded into a FoldedConv2D, exactly."""
  model = tt.wrap(conv_bn())
  _empty_units(model, {'c1': [0]})
  smaller, _ = compact_lib.compact_model(
      model, np.random.default_rng(0).normal(size=(8, 12, 12, 2)))
  folded = smaller.get_layer('c2')
  assert isinstance(folded, compact_lib.FoldedConv2D)
  bias = folded.position_bias.numpy()
  assert bias.shape == (6, 6, 6) and np.ptp(bias[:, :, 0]) > 0


def test_units_without_outputs_leave_and_element_tickets_compact():
  """An element ticket: units whose outgoing weights are all pruned leave
  too; nothing that computes is lost."""
  model = tt.wrap(mlp())
  masks = masks_lib.get_masks(model)
  masks['b'][[2, 7], :] = 0  # units 2 and 7 of 'a' feed nothing
  masks['a'][np.random.default_rng(0).random((20, 16)) < 0.5] = 0
  masks_lib.set_masks(model, masks)
  x = np.random.default_rng(1).normal(size=(32, 20)).astype(np.float32)
  smaller, report = compact_lib.compact_model(model, x)
  assert report['layers']['a']['width_after'] == 14
  assert report['parity']['max_rel'] <= 1e-5


def test_a_model_output_and_softmax_keep_their_units():
  inputs = keras.Input((6,))
  h = L.Dense(5, activation='softmax', name='soft')(inputs)
  model = tt.wrap(keras.Model(inputs, L.Dense(2, name='out')(h)))
  _empty_units(model, {'soft': [0], 'out': [1]})
  smaller, report = compact_lib.compact_model(model, np.ones((2, 6)))
  assert report['layers']['soft']['width_after'] == 5
  assert report['layers']['out']['width_after'] == 2


# -- structured pruning --------------------------------------------------------


def _arrays(seed=0, shape=(30, 12)):
  rng = np.random.default_rng(seed)
  mask = (rng.random(shape) < 0.7).astype(np.float32)
  return mask, rng.normal(size=shape).astype(np.float32) * mask


def test_refill_keeps_the_element_count_and_fills_whole_units():
  mask, weight = _arrays()
  pruned = algorithms.compute_masks({'w': mask}, {'w': weight},
                                    {'w': weight}, 0.4)['w']
  refilled = algorithms.compute_masks(
      {'w': mask}, {'w': weight}, {'w': weight}, 0.4, structure='refill',
      structured=['w'])['w']
  assert np.count_nonzero(refilled) == np.count_nonzero(pruned)
  per_unit = refilled.sum(axis=0)
  assert np.count_nonzero((per_unit > 0) & (per_unit < 30)) <= 1
  # The full units are those of largest L1 norm of the surviving weights.
  norms = np.abs(weight * pruned).sum(axis=0)
  full = np.flatnonzero(per_unit == 30)
  assert set(full) == set(np.argsort(-norms, kind='stable')[:full.size])


def test_unit_pruning_removes_whole_units_by_their_norm():
  mask, weight = _arrays(1)
  out = algorithms.compute_masks({'w': mask}, {'w': weight}, {'w': weight},
                                 0.25, structure='unit',
                                 structured=['w'])['w']
  alive = structure.alive_units(out)
  assert np.count_nonzero(alive) == 9  # 12 - round(0.25 * 12)
  norms = np.sqrt(((weight * mask) ** 2).sum(axis=0))
  assert set(np.flatnonzero(~alive)) == set(np.argsort(norms)[:3])
  np.testing.assert_array_equal(out[:, alive], mask[:, alive])


def test_random_fill_is_structured_exact_and_seeded():
  masks = [structure.random_fill((10, 8), 35, np.random.default_rng(seed))
           for seed in (0, 0, 1)]
  for m in masks:
    per_unit = m.sum(axis=0)
    assert m.sum() == 35 and sorted(per_unit)[-4:] == [5, 10, 10, 10]
    assert np.count_nonzero(per_unit) == 4
  np.testing.assert_array_equal(masks[0], masks[1])
  assert not np.array_equal(masks[0], masks[2])


def test_the_partial_refill_unit_keeps_its_largest_entries():
  mask, weight = _arrays(2)
  out = algorithms.compute_masks({'w': mask}, {'w': weight}, {'w': weight},
                                 0.5, structure='refill',
                                 structured=['w'])['w']
  per_unit = out.sum(axis=0)
  (partial,) = np.flatnonzero((per_unit > 0) & (per_unit < 30))
  chosen = np.flatnonzero(out[:, partial])
  top = np.argsort(-np.abs(weight[:, partial]), kind='stable')[:chosen.size]
  assert set(chosen) == set(top)


@pytest.mark.parametrize('bad, match', [
    (dict(structure='channels'), "unknown structure 'channels'"),
    (dict(structure='unit', scope='global'), "needs lottery.scope"),
    (dict(structure='refill', block_size=16), 'cannot be combined'),
])
def test_bad_structure_settings_name_the_setting(bad, match):
  with pytest.raises(tt.ConfigError, match=match) as e:
    lottery.LotterySettings(**bad)
  assert str(e.value).startswith('lottery.structure')


# -- end to end ----------------------------------------------------------------


def test_cli_refill_ticket_exports_a_compact_network(tmp_path):
  """IMP-Refill from the command line, 2 levels (64% of fc1 and fc2, the
  output layer element-wise at 81%): exact element counts in whole units,
  a random_prune control with the same whole-unit counts, and the compact
  export: 192 and 64 units, equal to the masked network, loading in
  LiteRT's default interpreter."""
  run_dir = tmp_path / 'run'
  proc = cli.train(('gin/lenet_imp.gin',), (
      "lottery.structure = 'refill'", 'lottery.levels = 2',
      'training.steps = 40', 'training.eval_every = 40',
      "lottery.branch = 'random_prune'", 'lottery.branch_levels = (2,)'),
      f'--output_dir={run_dir}', '--quiet')
  assert proc.returncode == 0, proc.stderr[-2000:]
  for branch in (None, 'random_prune'):
    level = rundir.level_dir(str(run_dir), 2, branch)
    model = tt.wrap(models.build_for(
        data_lib.load_dataset('fashion_mnist', idx_dir=cli.FIXTURE,
                              validation_examples=500)))
    rundir.load_weights(model, rundir.final_dir(level))
    masks = masks_lib.get_masks(model)
    assert int(masks['fc1'].sum()) == 150528  # 235,200 * 0.8 * 0.8
    assert int(masks['fc2'].sum()) == 19200  # 30,000 * 0.64
    assert int(structure.alive_units(masks['fc1']).sum()) == 192
    assert int(structure.alive_units(masks['fc2']).sum()) == 64
    # The output layer stays element-wise (81% of its entries, every class).
    assert int(masks['output'].sum()) == 810
    assert structure.alive_units(masks['output']).all()
    assert (masks['output'].sum(axis=0) < 100).any()
  proc = cli.run('tf_tickets.export', (), (), f'--run_dir={run_dir}',
                 '--compact', '--quiet', timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(run_dir / 'export' / 'level_2' / 'report.json') as f:
    report = json.load(f)
  compact = report['compact']
  assert report['passed'] and compact['parity']['max_rel'] <= 1e-5
  assert {k: r['width_after'] for k, r in compact['layers'].items()} == {
      'fc1': 192, 'fc2': 64, 'output': 10}
  files = {a['name']: a for a in compact['artifacts']}
  assert files['float32_dense.tflite']['runs_with_defaults']
  assert (run_dir / 'export' / 'level_2' / 'compact' /
          'float32_dense.tflite').exists()


def test_cli_bad_structure_is_one_error_line(tmp_path):
  proc = cli.train(('gin/lenet_imp.gin',), (
      "lottery.structure = 'unit'", "lottery.scope = 'global'"),
      f'--output_dir={tmp_path / "run"}')
  assert proc.returncode == 1
  assert cli.last_line(proc).startswith('error: lottery.structure: ')
  assert not (tmp_path / 'run').exists()
