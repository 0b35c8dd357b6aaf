"""Block masks: exact block counts, whole blocks only, the partial trailing
block pruned, every algorithm on blocks, end to end from the gin configs."""
import os

import gin
import numpy as np
import pytest

import cli
import tf_tickets as tt
from tf_tickets import algorithms
from tf_tickets import blocks
from tf_tickets import experiments
from tf_tickets import masks as masks_lib
from tf_tickets import models
from tf_tickets import rundir

BLOCK = (16, 1)
BASE = ('training.steps = 30', 'training.eval_every = 10',
        'dataset.max_train_examples = 600', 'experiment.quiet = True')


def lenet():
  return tt.wrap(models.build_model(name='lenet_300_100',
                                    input_shape=(28, 28, 1), num_classes=10))


def assert_blocked(mask, block=BLOCK):
  """A union of whole blocks; the trailing partial block inactive."""
  layout = blocks.Layout(mask.shape, block)
  flat = mask.reshape(-1) > 0
  assert layout.is_blocked(flat)
  rows = layout.grid[0] * block[0]
  assert not mask[rows:].any()
  return int(layout.active(flat).sum())


def test_layout_scores_expand_and_counts():
  layout = blocks.Layout((300, 2), (16, 1))
  assert layout.grid == (18, 2) and layout.size == 36 and layout.elems == 16
  w = np.zeros((300, 2))
  w[16:32, 1] = 2.0  # block (1, 1)
  w[299, 0] = 100.0  # in the partial trailing block: ignored
  scores = layout.scores(w.reshape(-1)).reshape(18, 2)
  assert scores[1, 1] == 2.0 and np.count_nonzero(scores) == 1
  blocks_on = np.zeros(36, bool)
  blocks_on[3] = True  # row 1, column 1
  mask = layout.expand(blocks_on).reshape(300, 2)
  assert mask[16:32, 1].all() and mask.sum() == 16
  assert layout.is_blocked(mask.reshape(-1))
  assert not layout.is_blocked(np.eye(300, 2).reshape(-1))
  # 90% of 600 entries: 60 kept = 3.75 blocks -> 4 blocks.
  assert layout.block_sparsity(0.9) == pytest.approx(1 - 4 / 36)
  assert layout.block_sparsity(0.0) == 0.0  # all whole blocks


@pytest.mark.parametrize('value, expected', [
    (None, None), (16, (16, 1)), ((16, 1), (16, 1)), ([4, 1], (4, 1)),
    ((1, 1), None)])
def test_parse(value, expected):
  assert blocks.parse(value, 'lottery.block_size') == expected


@pytest.mark.parametrize('value', ['16x1', (0, 1), (16, 1, 1), 2.5, (4.5, 1)])
def test_parse_errors_name_the_setting(value):
  with pytest.raises(tt.ConfigError, match='lottery.block_size'):
    blocks.parse(value, 'lottery.block_size')


def test_random_block_masks_have_exact_block_counts():
  model = lenet()
  shapes = masks_lib.weight_shapes(model)
  target = {'fc1': 0.9, 'fc2': 0.9, 'output': 0.5}
  masks_lib.init_masks(model, target, seed=3, block=BLOCK)
  masks = masks_lib.get_masks(model)
  for key, shape in shapes.items():
    layout = blocks.Layout(shape, BLOCK)
    n = assert_blocked(masks[key])
    assert n == round((1 - layout.block_sparsity(target[key])) * layout.size)
  # fc1 (784 = 49 blocks of 16 inputs): the density is the target's.
  assert masks['fc1'].mean() == pytest.approx(0.1, abs=1e-3)
  again = lenet()
  masks_lib.init_masks(again, target, seed=3, block=BLOCK)
  for key in shapes:
    np.testing.assert_array_equal(masks[key], masks_lib.get_masks(again)[key])


@pytest.mark.parametrize('method', ['gmp', 'snip', 'static'])
def test_every_method_keeps_pruned_layers_blocked_and_dense_ones_whole(
    tmp_path, method):
  run_settings = cli.settings(
      [os.path.join(cli.REPO, 'gin', 'lenet_rigl.gin')],
      list(cli.FIXTURE_PARAMS) + list(BASE) + [
          'sparse_training.block_size = (16, 1)', 'gmp.frequency = 5',
          f"sparse_training.method = '{method}'"])
  experiments.run(str(tmp_path / 'run'), run_settings)
  model = lenet()
  rundir.load_weights(model, rundir.final_dir(
      rundir.level_dir(str(tmp_path / 'run'), 0)))
  masks = masks_lib.get_masks(model)
  assert masks['output'].all()  # ERK: dense, so whole
  for key in ('fc1', 'fc2'):
    assert 0 < assert_blocked(masks[key]) < masks[key].size / 16 / 2


def test_imp_prunes_whole_blocks_of_smallest_norm():
  model = lenet()
  weights = masks_lib.get_weights(model)
  pruned = tt.pruning.prune(model, 0.2, block=BLOCK,
                            fractions={'output': 0.1})
  masks = masks_lib.get_masks(model)
  after = masks_lib.get_weights(model)
  for key in masks:
    layout = blocks.Layout(masks[key].shape, BLOCK)
    n = assert_blocked(masks[key])
    f = 0.1 if key == 'output' else 0.2
    assert n == layout.size - round(f * layout.size)
    assert pruned[key] == masks[key].size - masks[key].sum()
    assert np.all(after[key][masks[key] == 0] == 0)
    # The kept blocks are those of largest RMS norm.
    norms = layout.scores(weights[key].reshape(-1))
    kept = layout.active(masks[key].reshape(-1))
    assert norms[kept].min() >= norms[~kept].max()
  # A second level prunes 20% of the remaining blocks.
  tt.pruning.prune(model, 0.2, block=BLOCK)
  fc1 = masks_lib.get_masks(model)['fc1']
  level1 = 49 * 300 - round(0.2 * 49 * 300)
  assert assert_blocked(fc1) == level1 - round(0.2 * level1)


def test_global_pruning_with_blocks_needs_every_pooled_weight_blocked():
  model = tt.wrap(models.build_model(name='conv2', input_shape=(32, 32, 3),
                                     num_classes=10))
  with pytest.raises(tt.ConfigError, match='lottery.block_size'):
    tt.pruning.prune(model, 0.2, scope='global', block=BLOCK)
  assert all(m.all() for m in masks_lib.get_masks(model).values())


def _blocked_rigl(method='rigl'):
  cfg = algorithms.SparseTrainingSettings(
      method=method, sparsity=0.9, distribution='erk', update_every=10,
      end_step=0.9, block_size=BLOCK)
  model = lenet()
  algorithm = algorithms.make(cfg, tt.pruning.target_sparsities(model, cfg),
                              0, algorithms.RunSteps(100, 10),
                              masks_lib.weight_shapes(model))
  return model, algorithm


@pytest.mark.parametrize('method', ['rigl', 'set'])
def test_drop_and_grow_on_blocks_keeps_block_counts(method):
  model, algorithm = _blocked_rigl(method)
  for key, layout in algorithm.layouts.items():  # targets in whole blocks
    assert algorithm.unit_sparsities[key] == layout.block_sparsity(
        algorithm.sparsities[key])
  masks_lib.init_masks(model, algorithm.sparsities, seed=0, block=BLOCK)
  rng = np.random.default_rng(0)
  masks = {k: m.reshape(-1) > 0 for k, m in masks_lib.get_masks(model).items()}
  weights = {k: w.reshape(-1) for k, w in masks_lib.get_weights(model).items()}
  grads = {k: rng.standard_normal(w.size) for k, w in weights.items()}
  update = algorithm.update(10, masks, weights, grads)
  for key, new in update.masks.items():
    layout = blocks.Layout(masks_lib.weight_shapes(model)[key], BLOCK)
    before = layout.active(masks[key])
    assert layout.is_blocked(new)
    assert layout.active(new).sum() == before.sum()
    assert not (new & ~masks[key]).any() or update.stats[key]['grown'] > 0
    stats = update.stats[key]  # in entries: the block counts x 16
    assert stats['grown'] % 16 == 0 and stats['dropped'] % 16 == 0
    assert stats['active'] == 16 * int(before.sum())
    if method == 'rigl':  # grown: the largest gradient norms among the rest
      grown = layout.active(update.grown[key])
      candidates = ~layout.active(new) | grown
      norms = layout.scores(grads[key])
      assert norms[grown].min() >= norms[candidates & ~grown].max()


def test_blocked_rigl_training_run_keeps_invariants(tmp_path):
  run_settings = cli.settings(
      [os.path.join(cli.REPO, 'gin', 'lenet_rigl.gin')],
      list(cli.FIXTURE_PARAMS) + list(BASE) + [
          'sparse_training.block_size = (16, 1)',
          'sparse_training.update_every = 5'])
  rows = experiments.run(str(tmp_path / 'run'), run_settings)
  assert rows[0]['mask_updates'] >= 3
  model = lenet()
  net = rundir.level_dir(str(tmp_path / 'run'), 0)
  rundir.load_weights(model, rundir.final_dir(net))
  start = lenet()
  rundir.load_weights(start, rundir.start_dir(net))
  masks = masks_lib.get_masks(model)
  # ERK keeps the output layer dense: a dense layer stays whole (its
  # partial block too), the pruned ones are blocked.
  assert masks['output'].all()
  for key, mask in masks.items():
    if key == 'output':
      continue
    n = assert_blocked(mask)
    assert n == assert_blocked(masks_lib.get_masks(start)[key])
    assert np.all(masks_lib.get_weights(model)[key][mask == 0] == 0)


def test_blocked_lottery_levels_and_random_prune_control(tmp_path):
  params = list(cli.FIXTURE_PARAMS) + list(BASE) + [
      'lottery.levels = 2', 'lottery.block_size = (16, 1)']
  run_settings = cli.settings(
      [os.path.join(cli.REPO, 'gin', 'lenet_imp.gin')], params)
  experiments.run(str(tmp_path / 'run'), run_settings)
  level2 = lenet()
  rundir.load_weights(level2, rundir.start_dir(
      rundir.level_dir(str(tmp_path / 'run'), 2)))
  ticket = masks_lib.get_masks(level2)
  counts = {k: assert_blocked(m) for k, m in ticket.items()}
  assert counts['fc1'] == round(0.8 * (49 * 300 - round(0.2 * 49 * 300)))
  gin.clear_config()
  run_settings = cli.settings(
      [os.path.join(cli.REPO, 'gin', 'lenet_imp.gin')],
      params + ["lottery.branch = 'random_prune'"])
  experiments.run(str(tmp_path / 'run'), run_settings)
  control = lenet()
  branch = [d for d in os.listdir(tmp_path / 'run') if 'random_prune' in d]
  assert branch, os.listdir(tmp_path / 'run')
  rundir.load_weights(control, rundir.start_dir(rundir.level_dir(
      str(tmp_path / 'run' / branch[0]), 2)))
  for key, mask in masks_lib.get_masks(control).items():
    assert assert_blocked(mask) == counts[key]
    assert not np.array_equal(mask, ticket[key])


def test_bad_block_size_is_one_line_error(tmp_path):
  out = cli.run('tf_tickets.train', ['gin/lenet_imp.gin'],
                list(cli.FIXTURE_PARAMS) + ["lottery.block_size = '16x1'"],
                f'--output_dir={tmp_path / "run"}')
  assert out.returncode != 0
  assert 'lottery.block_size' in out.stderr and 'Traceback' not in out.stderr
  assert not (tmp_path / 'run').exists()
