"""TensorBoard summaries: tags and values read back from the event files."""
import csv
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

import cli
import events
import tf_tickets as tt
from tensorboard.plugins.custom_scalar import layout_pb2
from tf_tickets import data as data_lib
from tf_tickets import experiments
from tf_tickets import masks as pruning
from tf_tickets import models
from tf_tickets import rundir
from tf_tickets import summaries
from tf_tickets import training
from tf_tickets import wrapper
from tf_tickets.pruning import prune_by_magnitude
from tf_tickets.summaries import layout

BASE = ('training.steps = 40', 'training.eval_every = 20',
        'dataset.max_train_examples = 600', 'experiment.quiet = True')
KEYS = ('fc1', 'fc2', 'output')


def run(run_dir, gin_file='lenet_imp.gin', params=()):
  return experiments.run(str(run_dir), cli.settings(
      [os.path.join(cli.REPO, 'gin', gin_file)],
      list(cli.FIXTURE_PARAMS) + list(BASE) + list(params)))


def results(path):
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def by_tag(directory):
  """{tag: {step: [(plugin, value), ...]}} of a directory's event files."""
  out = {}
  for tag, step, plugin, value in events.read_events(str(directory)):
    out.setdefault(tag, {}).setdefault(step, []).append((plugin, value))
  return out


@pytest.fixture(scope='module')
def lottery_run(tmp_path_factory):
  d = tmp_path_factory.mktemp('summaries') / 'run'
  run(d, params=('lottery.levels = 2', "lottery.branch = 'random_prune'",
                 'summaries.every = 10'))
  return d


def test_lottery_levels_draw_no_flat_density_lines(lottery_run):
  """A level's masks do not change in training: its density is in the
  run-level lottery/ summaries (one point per level) and in the level's
  text result, not in per-network curves."""
  rows = results(lottery_run / 'results.csv')
  assert len(rows) == 3
  scalars = events.read_scalars(str(lottery_run / 'lottery'))
  for row in rows:
    level = int(row['level'])
    net = by_tag(lottery_run / f'level_{level}')
    assert not [t for t in net if t.split('/')[0] in (
        'density', 'sparsity', 'disconnected_units')]
    (_, text), = net['result'][int(row['steps'])]
    assert f'| density | {float(row["density"]):.4g} |' in (
        text.item().decode())
    assert scalars['lottery/density/total'][level] == pytest.approx(
        float(row['density']), abs=1e-6)
    for key in KEYS:
      assert scalars[f'lottery/density/{key}'][level] == pytest.approx(
          float(row[f'density/{key}']), abs=1e-6)
      assert scalars[f'lottery/disconnected_units/{key}'][level] == 0.0


def final_masks(run_dir, level):
  net = tt.wrap(models.build_model(name='lenet_300_100',
                                   input_shape=(28, 28, 1), num_classes=10))
  rundir.load_weights(net, str(run_dir / f'level_{level}' / 'final'))
  return pruning.get_masks(net)


def test_mask_views_at_start_and_end(lottery_run):
  tags = by_tag(lottery_run / 'level_2')
  assert not [t for t in tags if t.startswith('masks/')]  # no raw masks
  # fc1 reads the flattened 28x28 image: connections per pixel, as an image
  # enlarged 4x; the other layers read hidden units: no image.
  assert [t for t in tags if t.startswith('input_connections/')] == [
      'input_connections/fc1']
  images = tags['input_connections/fc1']
  assert sorted(images) == [0, 40]  # start and end: no mask change between
  (plugin, value), = images[40]
  assert plugin == 'images' and (int(value[0]), int(value[1])) == (112, 112)
  png = tf.io.decode_png(value[2]).numpy()[:, :, 0]
  mask = final_masks(lottery_run, 2)['fc1']
  counts = (mask > 0).reshape(28, 28, 300).sum(axis=2)  # by hand
  expected = np.kron(counts / counts.max(), np.ones((4, 4)))
  assert np.abs(png / 255.0 - expected).max() <= 0.5 / 255 + 1e-9
  # Per-unit density: one histogram count per unit, over [0, 1].
  for key, units in (('fc1', 300), ('fc2', 100), ('output', 10)):
    (plugin, hist), = tags[f'unit_density/{key}'][40]
    assert plugin == 'histograms' and hist.shape == (20, 3)
    assert hist[0, 0] == 0.0 and hist[-1, 1] == 1.0
    assert hist[:, 2].sum() == units
  (_, hist), = tags['unit_density/output'][40]
  per_unit = (final_masks(lottery_run, 2)['output'] > 0).mean(axis=0)
  assert hist[:, 2].tolist() == np.histogram(per_unit, 20, (0, 1))[0].tolist()


def test_histograms_hold_active_weights_only(lottery_run):
  row = results(lottery_run / 'results.csv')[2]
  tags = by_tag(lottery_run / 'level_2')
  for key, params in (('fc1', 784 * 300), ('fc2', 300 * 100)):
    (plugin, hist), = tags[f'weights/{key}'][40]
    assert plugin == 'histograms' and hist.shape == (30, 3)
    active = round(float(row[f'density/{key}']) * params)
    assert hist[:, 2].sum() == active


def test_lottery_level_scalars(lottery_run):
  rows = results(lottery_run / 'results.csv')
  scalars = events.read_scalars(str(lottery_run / 'lottery'))
  for row in rows:
    level, density = int(row['level']), float(row['density'])
    assert scalars['lottery/density/total'][level] == pytest.approx(
        density, abs=1e-6)
    for name in ('test_accuracy', 'early_stop_step',
                 'early_stop_test_accuracy'):
      assert scalars[f'lottery/{name}'][level] == pytest.approx(
          float(row[name]), abs=1e-6)
  # IMP masks are nested: |m_L & m_L-1| / |m_L | m_L-1| = density ratio.
  assert sorted(scalars['lottery/jaccard/fc1']) == [1, 2]
  for level in (1, 2):
    assert scalars['lottery/jaccard/fc1'][level] == pytest.approx(0.8, abs=1e-6)
    assert scalars['lottery/jaccard/output'][level] == pytest.approx(0.9,
                                                                     abs=1e-6)
  text = by_tag(lottery_run / 'lottery')['lottery/levels'][2][0][1]
  assert text.item().decode().count('\n') == 4  # header, rule, 3 levels


def _png(value):
  return tf.io.decode_png(value[2]).numpy()[:, :, 0]


def test_lottery_images_across_levels(lottery_run):
  """The ticket figure (three panels against the weights remaining) and
  the mask views of every level so far, written after each level."""
  tags = by_tag(lottery_run / 'lottery')
  assert sorted(tags['lottery/figure']) == [0, 1, 2]
  (plugin, figure), = tags['lottery/figure'][2]
  assert plugin == 'images' and figure[2][:8] == b'\x89PNG\r\n\x1a\n'
  assert int(figure[0]) > 2.5 * int(figure[1])  # three panels side by side
  # fc1 reads the image: one 28x28 map per level, enlarged 4x, side by side
  # with 1-pixel gaps; each level stretched to its own range.
  (_, grid), = tags['lottery/input_connections/fc1'][2]
  image = _png(grid) / 255.0
  assert image.shape == (112, 3 * 113 - 1)
  for level in (1, 2):
    counts = (final_masks(lottery_run, level)['fc1'] > 0).reshape(
        28, 28, 300).sum(axis=2)
    expected = np.kron(summaries.views.stretch(counts), np.ones((4, 4)))
    cell = image[:, level * 113:level * 113 + 112]
    assert np.abs(cell - expected).max() <= 0.5 / 255 + 1e-6
  assert np.all(np.abs(image[:, :112] - 0.5) < 1 / 255)  # level 0: uniform
  # Per-unit density: one band per level, one column per unit.
  for key, units in (('fc1', 300), ('fc2', 100), ('output', 10)):
    (_, bands), = tags[f'lottery/unit_density/{key}'][2]
    image = _png(bands) / 255.0
    cell = 600 // units
    assert image.shape == (3 * 12, units * cell)
    per_unit = (final_masks(lottery_run, 2)[key] > 0).mean(axis=0)
    assert np.abs(image[-1, ::cell] - per_unit / per_unit.max()).max() <= (
        0.5 / 255 + 1e-6)
    assert np.all(image[:12] == 1.0)  # level 0: every unit complete


def test_rewind_distance_from_start_weights(lottery_run):
  scalars = events.read_scalars(str(lottery_run / 'lottery'))
  # Recompute level 1's distance from its saved start/ and final/ weights.
  net = tt.wrap(models.build_model(name='lenet_300_100',
                                   input_shape=(28, 28, 1), num_classes=10))
  level_dir = lottery_run / 'level_1'
  rundir.load_weights(net, str(level_dir / 'start'))
  start = pruning.get_weights(net)
  rundir.load_weights(net, str(level_dir / 'final'))
  final = pruning.get_weights(net)
  total = 0.0
  for key in KEYS:
    d = float(np.sum((final[key].astype(np.float64) - start[key]) ** 2))
    total += d
    assert scalars[f'lottery/rewind_distance/{key}'][1] == pytest.approx(
        np.sqrt(d), rel=1e-5)
  assert scalars['lottery/rewind_distance/total'][1] == pytest.approx(
      np.sqrt(total), rel=1e-5)
  assert 0 < scalars['lottery/rewind_distance_relative/total'][1] < 1


def test_branch_writer_and_random_masks_overlap(lottery_run):
  rows = results(lottery_run / 'branch_random_prune' / 'results.csv')
  scalars = events.read_scalars(
      str(lottery_run / 'branch_random_prune' / 'lottery'))
  assert sorted(scalars['lottery/density/total']) == [1, 2]
  assert scalars['lottery/density/total'][2] == pytest.approx(
      float(rows[1]['density']), abs=1e-6)
  # Independent random masks: overlap well below the nested 0.8.
  assert scalars['lottery/jaccard/fc1'][2] < 0.7


def test_custom_scalars_layout_once_at_run_root(lottery_run):
  files = glob.glob(str(lottery_run / 'events.out.tfevents.*'))
  assert len(files) == 1
  (tag, _, plugin, value), = events.read_events(str(lottery_run))
  assert (tag, plugin) == ('custom_scalars__config__', 'custom_scalars')
  layout = layout_pb2.Layout.FromString(value.item())
  assert [c.title for c in layout.category] == ['Training']
  charts = {t for c in layout.category for ch in c.chart
            for t in ch.multiline.tag}
  assert r'^train/loss$' in charts and r'^eval/val_accuracy$' in charts
  assert not summaries.write_layout(str(lottery_run))  # once per run dir


def raw_scalar_steps(run_dir):
  """{run: {tag: [step, ...]}} of every scalar written below run_dir, in
  the order written (runs named as TensorBoard names them)."""
  out = {}
  for path in glob.glob(str(run_dir / '**' / 'events.out.tfevents.*'),
                        recursive=True):
    directory = os.path.dirname(path)
    run = os.path.relpath(directory, str(run_dir))
    if run in out:
      continue
    for tag, step, plugin, _ in events.read_events(directory):
      if plugin == 'scalars':
        out.setdefault(run, {}).setdefault(tag, []).append(step)
  return out


@pytest.mark.parametrize('fast', [True, False],
                         ids=['data_server', 'python_loader'])
def test_tensorboard_shows_every_level(lottery_run, fast):
  """TensorBoard with default settings shows every point written, so one
  point per level on every per-level chart: the data server (the default
  loader where it exists) keeps, per run and tag, only points with steps
  below a later point's; the Python loader (default purge_orphaned_data)
  purges by step too in files without a file version. Hence every tag's
  steps increase in every run."""
  raw = raw_scalar_steps(lottery_run)
  with events.tensorboard(lottery_run, fast) as board:
    shown = events.scalar_steps(board)
  for run, tags in raw.items():
    for tag, steps in tags.items():
      assert shown[run][tag] == steps, (run, tag)  # every point shown
      assert steps == sorted(set(steps)), (run, tag, steps)  # increasing
  main = results(lottery_run / 'results.csv')
  branch = results(lottery_run / 'branch_random_prune' / 'results.csv')
  for run, rows in (('lottery', main), ('branch_random_prune/lottery', branch)):
    tags = {t: s for t, s in shown[run].items() if t.startswith('lottery')}
    # 3 + 4 densities + 4 jaccard + 4 + 1 rewind distances + 4 cut-off units
    assert len(tags) == 20
    for tag, steps in tags.items():
      first_has_no_jaccard = 1 if '/jaccard/' in tag else 0
      assert len(steps) == len(rows) - first_has_no_jaccard, tag
    assert shown[run]['lottery/test_accuracy'] == [
        int(r['level']) for r in rows]


def test_custom_scalars_sections_of_a_lottery_run(lottery_run):
  with events.tensorboard(lottery_run) as board:
    sections = events.custom_scalars_layout(board)
  assert list(sections) == ['Training', 'Lottery']  # no 'Sparse training'
  assert len(sections['Lottery']) == 6
  assert 'Density by level, total and per layer' in sections['Lottery']


def test_rerun_of_a_finished_run_adds_no_events(lottery_run):
  before = {p: os.path.getsize(p) for p in glob.glob(
      str(lottery_run / '**' / 'events.out.tfevents.*'), recursive=True)}
  run(lottery_run, params=('lottery.levels = 2',
                           "lottery.branch = 'random_prune'",
                           'summaries.every = 10'))
  after = {p: os.path.getsize(p) for p in glob.glob(
      str(lottery_run / '**' / 'events.out.tfevents.*'), recursive=True)}
  assert after == before


class FakeRigL(training.Hook):
  """Moves k connections per layer at `at`: drops the k smallest active
  weights and grows k inactive connections (a real mask change)."""

  def __init__(self, at, k=50):
    self.at, self.k, self.moved = at, k, {}

  def after_step(self, ctx, step, grads):
    if step != self.at:
      return
    masks = pruning.get_masks(ctx.model)
    weights = pruning.get_weights(ctx.model)
    rng = np.random.default_rng(0)
    stats = {}
    for key, m in masks.items():
      flat, w = m.reshape(-1).copy(), np.abs(weights[key]).reshape(-1)
      active, inactive = np.flatnonzero(flat), np.flatnonzero(flat == 0)
      drop = active[np.argsort(w[active], kind='stable')[:self.k]]
      grow = rng.choice(inactive, self.k, replace=False)
      flat[drop], flat[grow] = 0.0, 1.0
      masks[key] = flat.reshape(m.shape)
      self.moved[key] = (drop, grow)
      stats[key] = dict(dropped=len(drop), grown=len(grow), churn=0.01,
                        drop_fraction=self.k / len(active))
    pruning.set_masks(ctx.model, masks)
    ctx.masks_changed(step, stats)

  def end(self, ctx, result):
    """What the sparse-training hook reports: grown connections alive."""
    masks = pruning.get_masks(ctx.model)
    per_key = {k: float(np.mean(masks[k].reshape(-1)[grow] > 0))
               for k, (_, grow) in self.moved.items()}
    result['layer_grown_survival'] = per_key
    result['grown_survival'] = float(np.mean(list(per_key.values())))


@pytest.mark.parametrize('strategy', ['default', 'mirrored'])
def test_mask_update_summaries_with_a_fake_rigl_hook(tmp_path, strategy,
                                                     request):
  strategy = (tf.distribute.get_strategy() if strategy == 'default'
              else request.getfixturevalue('mirrored'))
  run_settings = cli.settings((), cli.FIXTURE_PARAMS + (
      'dataset.max_train_examples = 600', 'summaries.every = 0',
      'summaries.image_every = 0', 'training.steps = 30',
      'training.eval_every = 30'))
  ctx = experiments.Context(run_dir=str(tmp_path),
                            data=data_lib.load(run_settings.dataset),
                            settings=run_settings, strategy=strategy,
                            quiet=True)
  model = ctx.build_model()
  prune_by_magnitude(model, 0.5)
  fake = FakeRigL(at=20)
  result = ctx.train(model, str(tmp_path / 'net'), hooks=[fake])
  tags = by_tag(tmp_path / 'net')
  scalars = events.read_scalars(str(tmp_path / 'net'))
  for key in KEYS:
    assert scalars[f'sparse_training/dropped/{key}'] == {20: 50.0}
    assert scalars[f'sparse_training/grown/{key}'] == {20: 50.0}
    assert scalars[f'sparse_training/drop_fraction/{key}'][20] > 0
    assert scalars[f'sparse_training/churn/{key}'] == {20: pytest.approx(0.01)}
    # Mask views at the start, the change and the end.
    assert sorted(tags[f'unit_density/{key}']) == [0, 20, 30]
    # Grown connections that survive to the end: all (no later update).
    assert scalars[f'sparse_training/grown_survival/{key}'] == {30: 1.0}
  assert sorted(tags['input_connections/fc1']) == [0, 20, 30]
  assert scalars['sparse_training/dropped/total'] == {20: 150.0}
  assert scalars['sparse_training/grown/total'] == {20: 150.0}
  assert result['grown_survival'] == 1.0
  # Density stays constant (drop = grow) and is logged from the first
  # change on, with the start's value at the start's step.
  assert scalars['density/total'][20] == pytest.approx(
      scalars['density/total'][0], abs=1e-7)
  assert sorted(scalars['density/total']) == [0, 20, 30]  # every = 0
  assert 'sparsity/total' not in scalars  # 1 - density: not repeated


def test_real_rigl_run_dropped_equals_grown(tmp_path):
  rows = run(tmp_path / 'rigl', 'lenet_rigl.gin', params=(
      'training.steps = 60', 'sparse_training.update_every = 20',
      'sparse_training.end_step = 1.0'))
  scalars = events.read_scalars(str(tmp_path / 'rigl' / 'level_0'))
  dropped = {k: v for k, v in scalars.items()
             if k.startswith('sparse_training/dropped/')}
  assert set(dropped) >= {f'sparse_training/dropped/{k}' for k in KEYS}
  assert sorted(dropped['sparse_training/dropped/total']) == [1, 21, 41]
  assert dropped['sparse_training/dropped/total'][21] > 0
  for tag, values in dropped.items():
    assert scalars[tag.replace('/dropped/', '/grown/')] == values
  row = results(tmp_path / 'rigl' / 'results.csv')[0]
  assert scalars['density/total'][60] == pytest.approx(float(row['density']),
                                                       abs=1e-6)
  assert len(rows) == 1 and row['grown_survival'] != ''
  assert scalars['sparse_training/grown_survival/total'][60] == (
      pytest.approx(float(row['grown_survival']), abs=1e-6))
  # One source for survival: the sparse-training hook's checkpointed
  # counts (result.json), which the summaries only write.
  result = rundir.read_result(str(tmp_path / 'rigl' / 'level_0'))
  assert result['layer_grown_survival'] and set(
      result['layer_grown_survival']) <= set(KEYS)  # layers that grew
  for key, value in result['layer_grown_survival'].items():
    assert scalars[f'sparse_training/grown_survival/{key}'][60] == (
        pytest.approx(value, abs=1e-6))
  with events.tensorboard(tmp_path / 'rigl') as board:
    sections = events.custom_scalars_layout(board)
  assert list(sections) == ['Training', 'Sparsity', 'Sparse training']
  assert len(sections['Sparse training']) == 6
  assert len(sections['Sparsity']) == 2  # 4 lines each: no group needed


def test_disabled_writes_no_sparsity_summaries(tmp_path):
  run(tmp_path / 'run', params=("experiment.kind = 'dense'",
                                'training.steps = 10',
                                'summaries.enabled = False'))
  tags = by_tag(tmp_path / 'run' / 'level_0')
  assert 'eval/test_accuracy' in tags
  assert not [t for t in tags if t.split('/')[0] in
              ('density', 'sparsity', 'weights', 'unit_density',
               'input_connections', 'disconnected_units',
               'custom_scalars__config__')]


def test_input_connections_by_hand():
  mask = np.zeros((28 * 28, 300), np.float32)
  mask[3 * 28 + 5, :7] = 1.0  # pixel (3, 5): 7 connections
  mask[10 * 28 + 20, :] = 1.0  # pixel (10, 20): all 300
  counts = summaries.input_connections(mask, (28, 28, 1))
  expected = np.zeros((28, 28))
  expected[3, 5], expected[10, 20] = 7, 300
  assert counts.tolist() == expected.tolist()
  image = summaries.connections_image(counts)
  assert image.shape == (112, 112)  # enlarged 4x, whole pixels
  assert np.allclose(image[12:16, 20:24], 7 / 300)
  assert image[40:44, 80:84].min() == 1.0 and image.sum() == pytest.approx(
      16 * (1 + 7 / 300))
  # Channels-last flattening: channels are summed per position.
  rgb = np.zeros((2, 3, 3, 4))
  rgb[1, 2, :, 0] = 1.0  # position (1, 2): 3 channels x unit 0
  rgb[0, 0, 1, :] = 1.0  # position (0, 0): channel 1 x 4 units
  counts = summaries.input_connections(rgb.reshape(18, 4), (2, 3, 3))
  assert counts.tolist() == [[4, 0, 0], [0, 0, 3]]


def test_unit_density_by_hand():
  conv = np.zeros((3, 3, 2, 4), np.float32)
  conv[..., 0] = 1.0
  conv[0, 0, 0, 2] = 1.0
  conv[:, :, 1, 3] = 1.0
  assert summaries.unit_density(conv).tolist() == pytest.approx(
      [1.0, 0.0, 1 / 18, 0.5])
  dense = np.array([[1, 0, 1], [1, 0, 0]], np.float32)
  assert summaries.unit_density(dense).tolist() == [1.0, 0.0, 0.5]
  depthwise = np.zeros((3, 3, 2, 2))  # (kh, kw, in, multiplier)
  depthwise[:, :, 1, 0] = 1.0
  assert summaries.unit_density(depthwise, (-2, -1)).tolist() == [
      0.0, 0.0, 1.0, 0.0]
  transpose = np.zeros((3, 3, 4, 2))  # (kh, kw, out, in)
  transpose[:, :, 1, :] = 1.0
  assert summaries.unit_density(transpose, (-2,)).tolist() == [0, 1, 0, 0]


def test_image_inputs_follow_the_flatten():
  cases = (('lenet_300_100', (28, 28, 1), {'fc1': (28, 28, 1)}),
           ('lenet5', (28, 28, 1), {'fc1': (5, 5, 16)}),
           ('conv2', (32, 32, 3), {'fc1': (16, 16, 64)}))
  for name, shape, expected in cases:
    net = tt.wrap(models.build_model(name=name, input_shape=shape,
                                     num_classes=10))
    entries = wrapper.prunable_entries(net)
    assert summaries.image_inputs(net, entries) == expected, name
    axes = {k: summaries.unit_axes(wr.layer, wr.prunable_weights[i])
            for k, (wr, i) in entries.items()}
    assert set(axes.values()) == {(-1,)}


def test_fit_image_and_sections():
  big = np.zeros((1030, 600), np.float32)
  big[:3, :] = 1.0  # first block row of 3 x 2 blocks is fully active
  img = summaries.fit_image(big, 512)
  assert img.shape == (344, 300)  # ceil(1030 / 3), 600 / 2
  assert np.all(img[0] == 1.0) and np.all(img[1:] == 0.0)
  odd = summaries.fit_image(np.ones((1025, 7)), 512)  # padded edge block
  assert odd.shape == (342, 7) and np.all(odd == 1.0)
  assert summaries.fit_image(np.ones((5, 40))).shape == (10, 80)
  assert summaries.fit_image(np.ones((200, 20))).shape == (200, 20)
  assert summaries.jaccard([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(1 / 3)
  # Per-layer charts of at most 10 lines: total + 9 layers a chart.
  keys = [f'conv{i}' for i in range(20)]
  charts = layout.grouped_charts('Density', 'density', keys)
  assert [c.title for c in charts] == [f'Density ({i} of 3)' for i in (1, 2, 3)]
  assert charts[0].multiline.tag == [
      '^density/(total|' + '|'.join(keys[:9]) + ')$']
  assert charts[2].multiline.tag == ['^density/(total|conv18|conv19)$']
  # Pruning-only updates (GMP, SNIP): no grown-connection charts.
  pruned = layout.reported_figures(
      {'fc1': dict(dropped=5, grown=0, regrown=0, active=10)})
  assert [c.title for c in layout.sparse_training_section(pruned).chart] == [
      'Connections dropped per update']
  rigl = layout.reported_figures(
      {'fc1': dict(dropped=5, grown=5, churn=0.1, drop_fraction=0.3)})
  assert len(layout.sparse_training_section(rigl).chart) == 6
  chase = layout.reported_figures({'fc1': dict(
      dropped=5, grown=5, drop_fraction=0.3, units_alive=80, units_removed=2)})
  assert 'Units alive (sparse_training.channel_sparsity)' in [
      c.title for c in layout.sparse_training_section(chase).chart]
  assert layout.sparse_training_section(set()) is None


def test_histograms_of_a_diverged_network_leave_non_finite_values_out():
  batch = summaries.Batch()
  batch.histogram('w', [np.nan, 1.0, np.inf, 3.0, -np.inf], buckets=2)
  batch.histogram('all_nan', [np.nan, np.nan])
  (value,) = batch.summary.value  # nothing for all-NaN weights
  h = tf.make_ndarray(value.tensor)
  assert value.tag == 'w'
  np.testing.assert_array_equal(h, [[1.0, 2.0, 1.0], [2.0, 3.0, 1.0]])


def test_a_resumed_writer_leaves_one_event_file(tmp_path):
  """Two writers in one directory (a network resumed at step 3 after the
  first wrote up to step 5): one file, steps 0..2 from the first, 3..8
  from the second, the points past the resume step dropped."""
  for first, last, value in ((0, 5, 1.0), (3, 8, 2.0)):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
      for step in range(first, last + 1):
        tf.summary.scalar('x', value, step=step)
    writer.close()
  assert len(glob.glob(str(tmp_path / 'events.out.tfevents.*'))) == 2
  assert summaries.compact_events(str(tmp_path))
  assert len(glob.glob(str(tmp_path / 'events.out.tfevents.*'))) == 1
  assert events.read_scalars(str(tmp_path))['x'] == {
      s: (1.0 if s < 3 else 2.0) for s in range(9)}
  assert not summaries.compact_events(str(tmp_path))  # one file: nothing


def test_lottery_views_of_a_conv_net_show_filters(tmp_path):
  """Per-filter density bands for convolutions and connection maps of the
  first Dense layer on the last feature map, from LevelSummaries alone."""
  net = tt.wrap(models.build_model(name='conv2', input_shape=(32, 32, 3),
                                   num_classes=10, seed=0))
  sums = summaries.LevelSummaries(str(tmp_path), enabled=True)
  rows = []
  for level in range(3):
    if level:
      prune_by_magnitude(net, 0.5)
    sums.before(net, str(tmp_path / f'level_{level}'))
    report = pruning.sparsity_report(net)
    rows.append(dict(level=level, density=report['density'], method='imp',
                     branch='lottery', test_accuracy=0.5 + 0.1 * level,
                     early_stop_step=10, early_stop_test_accuracy=0.5))
    sums.after(net, rows[-1], rows)
  tags = by_tag(tmp_path / 'lottery')
  masks = pruning.get_masks(net)
  assert 'conv1' in masks and masks['conv1'].ndim == 4
  (_, bands), = tags['lottery/unit_density/conv1'][2]
  image = _png(bands) / 255.0
  filters = masks['conv1'].shape[-1]
  cell = 600 // filters
  assert image.shape == (3 * 12, filters * cell)
  per_filter = (masks['conv1'] > 0).reshape(-1, filters).mean(axis=0)
  assert np.abs(image[-1, ::cell] - per_filter / per_filter.max()).max() <= (
      0.5 / 255 + 1e-6)
  (_, grid), = tags['lottery/input_connections/fc1'][2]
  h, w, _ = summaries.image_inputs(net, wrapper.prunable_entries(net))['fc1']
  up = max(1, 112 // max(h, w))
  assert _png(grid).shape == (h * up, 3 * (w * up + 1) - 1)
  assert sorted(tags['lottery/figure']) == [0, 1, 2]
  assert len(glob.glob(str(tmp_path / 'lottery' / 'events.out.tfevents.*'))
             ) == 1


def test_compaction_keeps_what_a_kill_left_and_leaves_links_alone(tmp_path):
  for first, last in ((0, 5), (3, 8)):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
      for step in range(first, last + 1):
        tf.summary.scalar('x', float(step), step=step)
    writer.close()
  older = sorted(glob.glob(str(tmp_path / 'events.out.tfevents.*')))[0]
  with open(older, 'rb') as f:
    data = f.read()
  with open(older, 'wb') as f:  # a kill in the middle of the last record
    f.write(data[:-7])
  link_dir = tmp_path / 'shadow'
  link_dir.mkdir()
  for path in glob.glob(str(tmp_path / 'events.out.tfevents.*')):
    os.symlink(path, link_dir / os.path.basename(path))
  assert not summaries.compact_events(str(link_dir))  # the chief's files
  assert summaries.compact_events(str(tmp_path))
  assert sorted(events.read_scalars(str(tmp_path))['x']) == list(range(9))


def test_summary_hook_writes_on_its_own_schedule(tmp_path):
  """`summaries.every = 7` over 20 steps: histograms at the start, every 7
  steps and at the end; the loop stops exactly there (its `next_event`)."""
  run_settings = cli.settings((), cli.FIXTURE_PARAMS + (
      'dataset.max_train_examples = 600', 'training.steps = 20',
      'training.eval_every = 20', 'training.steps_per_loop = 100',
      'summaries.enabled = False'))  # only this test's hook writes
  ctx = experiments.Context(run_dir=str(tmp_path),
                            data=data_lib.load(run_settings.dataset),
                            settings=run_settings,
                            strategy=tf.distribute.get_strategy(), quiet=True)
  model = ctx.build_model()
  hook = summaries.SummaryHook(every=7)
  ctx.train(model, str(tmp_path / 'net'), hooks=[hook])
  tags = by_tag(tmp_path / 'net')
  assert sorted(tags['weights/fc1']) == [0, 7, 14, 20]
  assert hook.next_event(14) == 21 and hook.next_event(0) == 7
  assert summaries.SummaryHook(every=0).next_event(5) > 10**9  # no writer
