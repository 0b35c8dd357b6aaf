"""Your own model builder and dataset loader through gin, from the
command line: a lottery, a resume after SIGKILL, the export, bad input."""
import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import cli
from tf_tickets import rundir

OWN = ('gin/lenet_imp.gin', 'tests/plugins/own_cnn.gin')
SHORT = ('training.steps = 200', 'training.eval_every = 100',
         'training.checkpoint_every = 20', 'lottery.levels = 1',
         'dataset.validation_examples = 200')


def _variables(path):
  prefix = os.path.join(str(path), 'weights')
  reader = tf.train.load_checkpoint(prefix)
  return {n: reader.get_tensor(n) for n, _ in tf.train.list_variables(prefix)
          if 'OBJECT_GRAPH' not in n}


@pytest.mark.slow
@pytest.mark.parametrize('loader', ['fixture_images', 'fixture_stream'])
def test_own_model_and_data_by_gin_lottery_resume_and_export(tmp_path,
                                                             loader):
  """`import own_models` + `model.builder = @own_models.small_cnn` +
  `dataset.loader = @own_models.fixture_images` (arrays; or
  `fixture_stream`: tf.data datasets, a training set that streams): a
  two-level lottery that resumes after SIGKILL mid-level bitwise, and
  exports from its run directory."""
  params = SHORT + (f'dataset.loader = @own_models.{loader}',)
  killed = tmp_path / 'killed'
  cli.train_and_kill(OWN, params, killed, 'level_1/checkpoints/ckpt-*.index')
  assert not (killed / 'level_1' / 'result.json').exists()
  done = cli.train(OWN, params, f'--output_dir={killed}', '--quiet')
  assert done.returncode == 0, done.stderr[-2000:]
  straight = tmp_path / 'straight'
  ref = cli.train(OWN, params, f'--output_dir={straight}', '--quiet')
  assert ref.returncode == 0, ref.stderr[-2000:]
  a = _variables(killed / 'level_1' / 'final')
  b = _variables(straight / 'level_1' / 'final')
  assert a.keys() == b.keys() and any('conv' in k for k in a)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)
  export = cli.run('tf_tickets.export', (), (), f'--run_dir={straight}',
                   '--quiet')
  assert export.returncode == 0, export.stderr[-2000:]
  assert glob.glob(str(straight / 'export' / 'level_1' / 'float32.tflite'))


@pytest.mark.slow
@pytest.mark.parametrize('params,setting', [
    (('model.builder = @own_models.keras3_model',), 'model.builder'),
    (('model.builder = @own_models.no_prunable_layer',), 'model.builder'),
    (('model.builder = @own_models.subclassed_model',), 'model.builder'),
    (('dataset.loader = @own_models.wrong_images',), 'dataset.loader'),
    (('import not_a_module_anywhere',), 'gin'),
])
def test_bad_plugins_give_one_error_line(tmp_path, params, setting):
  out = tmp_path / 'run'
  proc = cli.train(OWN, SHORT + params, f'--output_dir={out}', '--quiet')
  assert proc.returncode == 1, proc.stderr[-2000:]
  line = cli.last_line(proc)
  assert line.startswith('error:') and setting in line, line
  assert 'Traceback' not in proc.stderr
  assert not out.exists()


@pytest.mark.slow
def test_any_tfds_image_dataset_by_name(tmp_path):
  """A TFDS dataset that is not one of the four, prepared with TFDS's own
  tools into a data_dir (no network), trains by its name; its image shape
  and classes come from TFDS's dataset info."""
  data_dir = tmp_path / 'tfds'
  subprocess.run([sys.executable, os.path.join(
      cli.REPO, 'tests', 'plugins', 'tiny_tfds.py'), str(data_dir)],
                 check=True, capture_output=True, env=cli.env())
  out = tmp_path / 'run'
  proc = cli.run('tf_tickets.train', ('gin/lenet_dense.gin',), (
      "dataset.name = 'tiny_shapes'", f"dataset.data_dir = '{data_dir}'",
      'dataset.validation_examples = 60', 'dataset.batch_size = 30',
      'training.steps = 40', 'training.eval_every = 20'),
                 f'--output_dir={out}', '--quiet')
  assert proc.returncode == 0, proc.stderr[-2000:]
  row, = rundir.read_results(str(out / 'results.csv'))
  assert float(row['test_accuracy']) > 0.5  # 3 classes: chance is 1/3
  # The same, its training split streamed through tf.data.
  streamed = cli.run('tf_tickets.train', ('gin/lenet_dense.gin',), (
      "dataset.name = 'tiny_shapes'", f"dataset.data_dir = '{data_dir}'",
      'dataset.validation_examples = 60', 'dataset.batch_size = 30',
      'training.steps = 40', 'training.eval_every = 20',
      'dataset.stream = True'), f'--output_dir={tmp_path / "stream"}',
                     '--quiet')
  assert streamed.returncode == 0, streamed.stderr[-2000:]
  row, = rundir.read_results(str(tmp_path / 'stream' / 'results.csv'))
  assert float(row['test_accuracy']) > 0.5
  unknown = cli.run('tf_tickets.train', ('gin/lenet_dense.gin',), (
      "dataset.name = 'tiny_shapez'", f"dataset.data_dir = '{data_dir}'"),
                    f'--output_dir={tmp_path / "bad"}', '--quiet')
  assert unknown.returncode == 1
  line = cli.last_line(unknown)
  assert line.startswith('error: dataset.name') and 'tiny_shapez' in line
  assert not (tmp_path / 'bad').exists()


@pytest.mark.slow
def test_a_run_lottery_run_exports_from_the_command_line(tmp_path,
                                                        monkeypatch):
  """`tt.run_lottery` stamps config.json with its settings (the builder by
  import path): a rerun with other settings is refused, and the export
  command line rebuilds the model and exports a level once it is given
  the data, which the run does not record."""
  import tf_tickets as tt  # pylint: disable=g-import-not-at-top
  from tf_tickets.keras import keras  # pylint: disable=g-import-not-at-top
  monkeypatch.syspath_prepend(os.path.join(cli.REPO, 'tests', 'plugins'))
  import own_models  # pylint: disable=g-import-not-at-top
  (x, y), _ = own_models.fixture_images()

  def train(model, level):
    model.compile('adam', keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    model.fit(x[..., None].astype('float32'), y, batch_size=100, epochs=1,
              shuffle=False, callbacks=level.callbacks, verbose=0)

  out = tmp_path / 'run'
  rows = tt.run_lottery(own_models.fashion_cnn, train, out, levels=1)
  assert [r['level'] for r in rows] == [0, 1]
  with pytest.raises(tt.ConfigError, match=r'output_dir: .*differs in: '
                     r'lottery\.pruning_fraction'):
    tt.run_lottery(own_models.fashion_cnn, train, out, levels=1,
                   pruning_fraction=0.5)
  proc = cli.run('tf_tickets.export', (), (), f'--run_dir={out}', '--quiet')
  assert proc.returncode == 1 and cli.last_line(proc).startswith(
      'error: dataset: '), proc.stderr[-2000:]
  proc = cli.run('tf_tickets.export', (), (
      'import own_models', 'dataset.loader = @own_models.fixture_images',
      'dataset.validation_examples = 0'),
                 f'--run_dir={out}', '--quiet')
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = rundir.read_json(os.path.join(out, 'export', 'level_1',
                                         'report.json'))
  assert report['passed'] and report['source']['level'] == 1
