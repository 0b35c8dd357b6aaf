"""Edge export: SavedModel / TFLite round trips, quantisation, CLI, errors."""
import json
import os
import re
import shutil
import subprocess

import gin
import numpy as np
from absl import flags
import pytest
import tensorflow as tf

import cli
import tf_tickets as tt
from tf_tickets import data as data_lib
from tf_tickets import export
from tf_tickets.export import checks as export_checks
from tf_tickets import rundir
from tf_tickets import runner as train_cli
from tf_tickets import masks as masks_lib
from tf_tickets import models
from tf_tickets import wrapper
from tf_tickets.errors import ConfigError
from tf_tickets.errors import TicketsError
from tf_tickets.keras import keras
from tools import benchmark_tflite


def _synthetic(shape, n=64, seed=0):
  """A small random dataset with the given image shape."""
  rs = np.random.RandomState(seed)
  x = rs.randint(0, 256, (n,) + shape).astype(np.uint8)
  y = rs.randint(0, 10, n).astype(np.int64)
  c = shape[-1]
  return data_lib.Data(name='synthetic', x_train=x, y_train=y, x_val=x[:0],
                       y_val=y[:0], x_test=x, y_test=y, num_classes=10,
                       mean=(110.0,) * c, std=(70.0,) * c, batch_size=16,
                       augment=False)


def parse_c_array(text):
  """The bytes of an `export.c_array` .cc text."""
  body = text[text.index('{') + 1:text.index('}')]
  return bytes(int(v, 16) for v in re.findall(r'0x([0-9a-fA-F]{2})', body))


def _randomize_batchnorm(model, seed=0):
  """Non-trivial BN statistics, so BN folding really rescales kernels."""
  rs = np.random.RandomState(seed)
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      gamma, beta, mean, var = layer.get_weights()
      layer.set_weights([rs.uniform(0.5, 1.5, gamma.shape),
                         rs.normal(0, 0.2, beta.shape),
                         rs.normal(0, 0.2, mean.shape),
                         rs.uniform(0.5, 1.5, var.shape)])


# One member of every family of the zoo, at a small size.
ZOO = (
    ('lenet_300_100', (12, 12, 1), ()),
    ('lenet5', (16, 16, 1), ()),
    ('conv2', (8, 8, 1), ()),
    ('resnet20', (8, 8, 3), {'resnet20': {'width': 4}}),
    ('vgg16', (32, 32, 3), ()),
    ('mobilenet_v1', (32, 32, 3), {'mobilenet_v1': {'width_multiplier': 0.25}}),
)


@pytest.mark.parametrize('name,shape,options', ZOO, ids=[z[0] for z in ZOO])
def test_zoo_round_trip(tmp_path, name, shape, options):
  data = _synthetic(shape)
  model = models.build_model(name, input_shape=shape, num_classes=10,
                             mean=data.mean, std=data.std, seed=1,
                             options=options or None)
  _randomize_batchnorm(model)
  wrapped = tt.wrap(model)
  keys = list(wrapper.prunable_entries(wrapped))
  tt.prune_randomly(wrapped, {k: 0.8 for k in keys}, seed=3)
  out = tmp_path / 'export'
  report = export.export_network(wrapped, data, str(out), num_examples=64,
                                 quiet=True)
  assert report['passed'], report['failures']
  files = sorted(os.listdir(out))
  assert files == ['float32.tflite', 'float32_dense.tflite', 'report.json',
                   'saved_model']
  arts = {a['name']: a for a in report['artifacts']}
  active = {k: r['active'] for k, r in report['sparsity']['layers'].items()}

  # SavedModel: same logits, and its variables are the stripped kernels.
  sm = arts['saved_model/']
  assert sm['parity']['rel_diff'] <= 1e-5
  assert set(sm['layers']) == set(keys)
  for key, r in sm['layers'].items():
    assert r['equal'] and r['pruned_are_zero'] and r['nonzero'] == active[key]

  # TFLite: parity, and every pruned kernel found with its zeros intact.
  dense, sparse = arts['float32_dense.tflite'], arts['float32.tflite']
  for a in (dense, sparse):
    assert a['parity']['passed'] and a['parity']['agreement'] == 1.0
    assert a['parity']['rel_diff'] <= 1e-4
    assert set(a['layers']) == set(keys), report['notes']
    for key, r in a['layers'].items():
      assert r['pruned_are_zero'] and r['nonzero'] == active[key], key
  assert dense['densify_ops'] == 0 and dense['sparse_tensors'] == 0
  assert sparse['sparse_tensors'] >= 1 and sparse['densify_ops'] >= 1
  assert sparse['bytes'] < dense['bytes']
  assert any(r['storage'] == 'sparse' for r in sparse['layers'].values())

  # The files on disk do what the report says, fed raw pixels.
  pixels = data.x_test.astype(np.float32)
  reference = np.concatenate([
      wrapped(xb, training=False).numpy()
      for xb, _ in data_lib.eval_dataset(data.x_test, data.y_test)])
  loaded = tf.saved_model.load(str(out / 'saved_model'))
  sig = loaded.signatures['serving_default']
  assert sig.structured_input_signature[1]['pixels'].shape.as_list() == \
      [None] + list(shape)
  np.testing.assert_allclose(sig(pixels=tf.constant(pixels))['logits'],
                             reference, rtol=1e-4, atol=1e-4)
  logits, runtime, errors = export.run_tflite(str(out / 'float32.tflite'),
                                              pixels)
  assert (runtime, errors) == ('default', {})
  # Logits that fail the caller's check send it to the next runtime (as
  # XNNPack's wrong outputs for some block-sparse int8 files do).
  seen = []
  _, second, why = export.run_tflite(
      str(out / 'float32.tflite'), pixels,
      check=lambda l: None if seen else seen.append(1) or 'looks wrong')
  assert second == 'builtin' and why == {'default': 'wrong outputs: '
                                                    'looks wrong'}
  scale = max(1.0, np.abs(reference).max())
  assert np.abs(logits - reference).max() <= 1e-4 * scale
  np.testing.assert_array_equal(logits.argmax(-1), reference.argmax(-1))
  with open(out / 'report.json') as f:
    assert json.load(f)['passed']
  # float32 runs on LiteRT with the defaults (XNNPack), sparse or not.
  assert assert_files_run_on_litert(out, report) == {}
  assert {a['runtime'] for a in (dense, sparse)} == {'xnnpack'}


def _load_and_invoke(path, **options):
  """Loads a .tflite as an app does - LiteRT's Interpreter(model_path=...)
  with the given runtime options (none: its defaults) - and invokes it."""
  from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
  it = litert.Interpreter(model_path=str(path), **options)
  it.allocate_tensors()
  inp = it.get_input_details()[0]
  it.set_tensor(inp['index'], np.full(inp['shape'], 128, np.float32))
  it.invoke()
  return np.array(it.get_tensor(it.get_output_details()[0]['index']))


def _options(text):
  """A report's 'experimental_op_resolver_type=OpResolverType.NAME' as
  Interpreter keyword arguments."""
  from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
  key, value = text.split('=')
  enum, member = value.split('.')
  assert enum == 'OpResolverType'
  return {key: getattr(litert.OpResolverType, member)}


def assert_files_run_on_litert(out, report):
  """Every .tflite in `out` loads and runs in LiteRT with its defaults, or
  the report (report.json and the printed text) names the runtime option it
  needs and it runs with that option. Returns report['runtime_options']."""
  need = report['runtime_options']
  text = export.format_report(report)
  assert 'not met' not in text and 'target' not in text
  names = sorted(f for f in os.listdir(out) if f.endswith('.tflite'))
  assert names and set(need) <= set(names)
  for name in names:
    entry = next(a for a in report['artifacts'] if a['name'] == name)
    try:
      _load_and_invoke(os.path.join(out, name))
    except RuntimeError:
      assert need.get(name), (name, need)
      assert not entry['runs_with_defaults'] and entry['runtime'] == 'builtin'
      assert entry['litert_errors']['default']
      _load_and_invoke(os.path.join(out, name), **_options(need[name]))
      line = next(l for l in text.splitlines()
                  if l.startswith(f'  needs {need[name]}: '))
      assert name in line.split(': ', 1)[1].split(', ')
    else:
      assert name not in need
      assert entry['runs_with_defaults'] and entry['runtime'] == 'xnnpack'
  return need


def test_quantised_files_name_the_litert_option_they_need(tmp_path,
                                                        monkeypatch):
  data = _synthetic((12, 12, 1))
  model = tt.wrap(models.build_model('lenet_300_100', input_shape=(12, 12, 1),
                                     num_classes=10, mean=data.mean,
                                     std=data.std, seed=1))
  tt.prune_randomly(model, {k: 0.8 for k in wrapper.prunable_entries(model)},
                    seed=3)
  out = tmp_path / 'export'
  report = export.export_network(
      model, data, str(out), quantize=('dynamic', 'int8', 'float16'),
      formats=('tflite', 'c_array'), num_examples=64, quiet=True)
  assert report['passed'], report['failures']
  need = assert_files_run_on_litert(out, report)
  # Float files run on XNNPack; LiteRT 2.x's XNNPack delegate cannot prepare
  # a quantised FULLY_CONNECTED whose int8 kernel is stored sparse, so those
  # files are checked (parity included) on the builtin kernels instead.
  assert set(need) <= {'dynamic.tflite', 'int8.tflite'}
  arts = {a['name']: a for a in report['artifacts']}
  for name, option in need.items():
    assert option == ('experimental_op_resolver_type='
                      'OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES')
    assert arts[name]['parity']['passed']
  with open(out / 'report.json') as f:
    assert json.load(f)['runtime_options'] == need
  # The C arrays hold the dense-storage models, and say why.
  header = (out / 'int8_dense.h').read_text()
  assert 'TFLite Micro has no sparse tensor' in header
  assert 'dense-storage model' in header
  assert 'C arrays hold the dense-storage models' in export.format_report(
      report)

  # A sparse file that runs under no runtime option is written in dense
  # storage (which runs with the defaults), said in the report.
  if need:
    monkeypatch.delitem(export.RUNTIMES, 'builtin')
    name = sorted(need)[0]
    report = export.export_network(
        model, data, str(tmp_path / 'no_option'),
        quantize=name.split('.')[0], formats=('tflite',), num_examples=16,
        quiet=True)
    entry = next(a for a in report['artifacts'] if a['name'] == name)
    assert entry['storage'] == 'dense' and entry['runs_with_defaults']
    assert 'does not run on LiteRT' in entry['sparse_storage_failures'][0]
    assert any(n.startswith(f'{name}: written in dense storage')
               for n in report['notes'])
    # A file that runs under no option in either storage fails the export.
    monkeypatch.delitem(export.RUNTIMES, 'default')
    with pytest.raises(TicketsError, match=r'does not run on LiteRT'):
      export.export_network(model, data, str(tmp_path / 'none'),
                            formats=('tflite',), num_examples=16, quiet=True)
    assert (tmp_path / 'none.failed' / 'report.json').exists()


def test_densify_decodes_csr_and_blocks():
  rs = np.random.RandomState(0)
  dense = rs.normal(size=(4, 6)) * (rs.uniform(size=(4, 6)) < 0.4)
  # Plain CSR: dim 0 dense, dim 1 sparse.
  segments, indices, values = [0], [], []
  for row in dense:
    nz = np.flatnonzero(row)
    indices += list(nz)
    values += list(row[nz])
    segments.append(len(indices))
  csr = dict(traversal_order=[0, 1], block_map=[], dim_metadata=[
      dict(format=0, dense_size=4),
      dict(format=1, array_segments=np.array(segments),
           array_indices=np.array(indices))])
  np.testing.assert_array_equal(
      export.densify(np.array(values), (4, 6), csr), dense)
  # 1x2 blocks along dim 1: traversal (0, 1, 2) with dim 2 = block of dim 1.
  blocked = dense.copy()
  blocked[:, 2:4] = 0  # a zero block everywhere
  segments, indices, values = [0], [], []
  for row in blocked:
    for b in range(3):
      block = row[2 * b:2 * b + 2]
      if np.any(block):
        indices.append(b)
        values += list(block)
    segments.append(len(indices))
  bsr = dict(traversal_order=[0, 1, 2], block_map=[1], dim_metadata=[
      dict(format=0, dense_size=4),
      dict(format=1, array_segments=np.array(segments),
           array_indices=np.array(indices)),
      dict(format=0, dense_size=2)])
  np.testing.assert_array_equal(
      export.densify(np.array(values), (4, 6), bsr), blocked)


def test_c_array_round_trip_and_compiles(tmp_path):
  content = bytes(range(256)) * 3 + b'\x01\x02'
  cc, h = export.c_array(content, 'g_model', 'model.h', 'a comment')
  assert parse_c_array(cc) == content
  assert 'alignas(16) const unsigned char g_model[]' in cc
  assert f'const unsigned int g_model_len = {len(content)};' in cc
  assert 'extern const unsigned char g_model[];' in h
  if shutil.which('g++') is None:
    pytest.skip('no g++ to compile the C array')
  (tmp_path / 'model.cc').write_text(cc)
  (tmp_path / 'model.h').write_text(h)
  (tmp_path / 'main.cc').write_text(
      '#include "model.h"\nint main() { return g_model_len == '
      f'{len(content)} && g_model[{len(content) - 1}] == 2 ? 0 : 1; }}\n')
  subprocess.run(['g++', '-std=c++11', '-o', str(tmp_path / 'main'),
                  str(tmp_path / 'main.cc'), str(tmp_path / 'model.cc')],
                 check=True, cwd=tmp_path)
  assert subprocess.run([str(tmp_path / 'main')]).returncode == 0


def test_settings_validate():
  defaults = export.ExportSettings()
  assert (defaults.formats, defaults.quantize) == ((), ('none',))
  assert export.parse_quantize('int8,float16') == ('int8', 'float16')
  assert export.parse_quantize(['none', 'dynamic', 'none']) == ('none',
                                                                 'dynamic')
  with pytest.raises(ConfigError, match=r"--quantize: unknown .*'int4'.*"
                     r"'none', 'dynamic', 'int8', 'float16'"):
    export.parse_quantize(['int4'])
  with pytest.raises(ConfigError, match=r"export.formats: unknown format "
                     r"'onnx'; valid: 'saved_model', 'tflite', 'c_array'"):
    cli.settings((), ["export.formats = ['tflite', 'onnx']"])


# -- a trained tiny lottery run: the gin hook, quantisation, the CLI ----------


@pytest.fixture(scope='module')
def lottery_run(tmp_path_factory):
  """A tiny lottery run (2 levels) exported by the gin hook at its end."""
  gin.clear_config()
  params = list(cli.FIXTURE_PARAMS) + [
      "model.name = 'lenet_300_100'", 'training.steps = 150',
      'training.eval_every = 150', 'lottery.levels = 1',
      'lottery.pruning_fraction = 0.8',
      "export.formats = ['tflite', 'c_array']",
      "export.quantize = ['dynamic', 'int8', 'float16']"]
  run_dir = str(tmp_path_factory.mktemp('lottery') / 'run')
  # The training entrypoint in process: it runs the experiment, then export.
  assert train_cli.execute([], params, output_dir=run_dir, quiet=True) == 0
  gin.clear_config()
  rows = [rundir.read_result(rundir.level_dir(run_dir, level))
          for level in (0, 1)]
  return run_dir, rows


@pytest.mark.slow
def test_gin_hook_exports_sparsest_level_with_quantised_variants(lottery_run):
  run_dir, rows = lottery_run
  assert [r['level'] for r in rows] == [0, 1]
  out = os.path.join(run_dir, 'export', 'level_1')
  with open(os.path.join(out, 'report.json')) as f:
    report = json.load(f)
  assert report['passed'] and report['source']['level'] == 1
  assert report['sparsity']['density'] == pytest.approx(rows[1]['density'])
  arts = {a['name']: a for a in report['artifacts']}
  assert set(arts) == {
      'saved_model/', 'float32_dense.tflite', 'float32.tflite',
      'dynamic.tflite', 'int8.tflite', 'float16.tflite', 'int8_dense.tflite',
      'float32_dense.cc', 'int8_dense.cc'}
  keras_acc = report['keras_test_accuracy']
  assert keras_acc > 0.5  # trained
  for name in ('dynamic.tflite', 'int8.tflite', 'int8_dense.tflite'):
    p = arts[name]['parity']
    assert p['passed'] and p['agreement'] >= export.CHECKS[
        p['kind']]['min_agreement'], name
    for r in arts[name]['layers'].values():
      assert r['pruned_are_zero'], name
  assert arts['float16.tflite']['parity']['rel_diff'] <= 1e-2
  for name in ('float32.tflite', 'dynamic.tflite', 'int8.tflite',
               'float16.tflite'):
    assert arts[name]['sparse_tensors'] == 3, name  # fc1, fc2, output
    assert arts[name]['ratio_to_dense'] < 1.0
  assert arts['int8.tflite']['bytes'] < arts['int8_dense.tflite']['bytes']
  assert arts['int8_dense.tflite']['densify_ops'] == 0  # TFLite Micro-ready
  q = arts['int8.tflite']['int8_input_quantization']
  assert q['scale'] == pytest.approx(1.0) and q['zero_point'] == -128
  for stem in ('float32_dense', 'int8_dense'):
    with open(os.path.join(out, stem + '.cc')) as f:
      cc = f.read()
    with open(os.path.join(out, stem + '.tflite'), 'rb') as f:
      assert parse_c_array(cc) == f.read()
  # Every written file runs on LiteRT as reported (int8 and dynamic with
  # sparse int8 kernels on the builtin kernels, the others on XNNPack).
  need = assert_files_run_on_litert(out, report)
  assert set(need) <= {'dynamic.tflite', 'int8.tflite'}
  assert arts['int8_dense.tflite']['runs_with_defaults']
  targets = benchmark_tflite.size_targets(report)
  assert [t['artifact'] for t in targets] == ['float32.tflite', 'int8.tflite']


def test_floor_models_compute_what_the_benchmark_says(tmp_path):
  """The per-call floor of --export --floor: 'floor_io' copies the first
  outputs of the flattened input, 'floor_fc' is one matmul to the outputs."""
  paths = benchmark_tflite._floor_models([28, 28, 1], 10, str(tmp_path))
  x = np.random.RandomState(1).uniform(0, 255, (1, 28, 28, 1)).astype(
      np.float32)
  outs = {}
  for name, path in paths.items():
    with open(path, 'rb') as f:
      it = benchmark_tflite.load_interpreter(f.read(), 1, 'builtin')
    it.set_tensor(it.get_input_details()[0]['index'], x)
    it.invoke()
    outs[name] = it.get_tensor(it.get_output_details()[0]['index'])
  np.testing.assert_array_equal(outs['floor_io'], x.reshape(1, -1)[:, :10])
  kernel = np.random.RandomState(0).normal(0, 0.01, (784, 10))
  np.testing.assert_allclose(outs['floor_fc'], x.reshape(1, -1) @ kernel,
                             rtol=1e-4, atol=1e-3)


def test_help_lists_its_flags_and_exits_0():
  for arg in ('--help', '-h'):
    proc = cli.run('tf_tickets.export', (), (), arg, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert 'usage: python -m tf_tickets.export --run_dir=RUN' in out
    for flag in ('run_dir', 'level', 'output_dir', 'quantize', 'c_array',
                 'gin_param', 'num_examples', 'calibration_examples',
                 'quiet', 'helpfull'):
      assert f'\n  --{flag}' in out, flag
    # Points to the gin settings and the README instead of an essay.
    assert 'export.formats' in out and 'export.quantize' in out
    assert 'README.md' in out
    assert len(out.splitlines()) <= 30 and 'Modules:' not in out


def _cli_in_process(args, capsys):
  """Runs the export CLI's main in this process; (exit code, last stderr
  line)."""
  export.define_flags()
  flags.FLAGS.unparse_flags()
  flags.FLAGS(['tf_tickets.export'] + list(args))
  try:
    export.main(['tf_tickets.export'])
    code = 0
  except SystemExit as e:
    code = e.code
  finally:
    flags.FLAGS.unparse_flags()
  lines = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
  return code, lines[-1] if lines else ''


@pytest.mark.slow
def test_cli_end_to_end_and_bad_input(lottery_run, tmp_path, capsys):
  run_dir, _ = lottery_run
  before = {p: os.path.getmtime(os.path.join(run_dir, p))
            for p in ('operative_config.gin', 'results.csv')}
  out = str(tmp_path / 'cli_export')
  # As a user runs it: a subprocess per command (both at once).
  bad = subprocess.Popen(
      cli.command('tf_tickets.export', (), (), '--run_dir=' + run_dir,
                  '--quantize=int8,int4'),
      env=cli.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  good = cli.run('tf_tickets.export', (), (), '--run_dir=' + run_dir,
                 '--level=0', '--output_dir=' + out, '--num_examples=200')
  assert good.returncode == 0, good.stderr[-2000:]
  assert 'export passed' in good.stdout
  assert 'float32.tflite' in good.stdout and 'kernel sparsity' in good.stdout
  assert ('runs with the defaults (XNNPack delegate): float32_dense.tflite, '
          'float32.tflite' in good.stdout)
  assert 'not met' not in good.stdout and 'target' not in good.stdout
  with open(os.path.join(out, 'report.json')) as f:
    report = json.load(f)
  assert report['source']['level'] == 0 and report['passed']
  assert report['check_examples'] == 200
  _, stderr = bad.communicate(timeout=300)
  assert bad.returncode == 1
  assert [l for l in stderr.splitlines() if l.strip()][-1] == (
      "error: --quantize: unknown quantisation 'int4'; valid: 'none', "
      "'dynamic', 'int8', 'float16'")

  after = {p: os.path.getmtime(os.path.join(run_dir, p)) for p in before}
  assert after == before  # the run's files are untouched


def _fake_run(run_dir):
  """A run directory as the export sees it before loading anything:
  config.json, finished levels 0 and 1, a started level 2."""
  os.makedirs(run_dir)
  rundir.write_json(rundir.config_json_path(run_dir),
                    {'identity': {}, 'settings': {}})
  for level, density in ((0, 1.0), (1, 0.2)):
    net = rundir.level_dir(run_dir, level)
    os.makedirs(rundir.final_dir(net))
    rundir.write_json(rundir.result_path(net), dict(level=level,
                                                    density=density))
  os.makedirs(rundir.level_dir(run_dir, 2))
  os.makedirs(os.path.join(rundir.level_dir(run_dir, 1), 'stray'))


def test_cli_bad_input_one_error_line_each(tmp_path, capsys):
  """Every bad input of the export CLI: exit 1, one `error:` line naming
  the flag, nothing written into the run."""
  run_dir = str(tmp_path / 'run')
  _fake_run(run_dir)
  before = sorted(os.walk(run_dir))
  cases = {
      'not a run': (['--run_dir=' + str(tmp_path)],
                    'error: --run_dir: ', 'no config.json'),
      'no such dir': (['--run_dir=' + str(tmp_path / 'nope')],
                      'error: --run_dir: ', 'does not exist'),
      'missing level': (['--run_dir=' + run_dir, '--level=7'],
                        'error: --level: level 7 ',
                        'does not exist; finished levels: 0, 1'),
      'unfinished level': (['--run_dir=' + run_dir, '--level=2'],
                           'error: --level: level 2 ', 'is not finished'),
      'output is the run': (['--run_dir=' + run_dir,
                             '--output_dir=' + run_dir],
                            'error: --output_dir: ', 'run directory'),
      'output holds files': (['--run_dir=' + run_dir,
                              '--output_dir=' + os.path.join(run_dir,
                                                             'level_1')],
                             'error: --output_dir: ', 'not empty'),
      'bad quantisation': (['--run_dir=' + run_dir, '--quantize=int4'],
                           "error: --quantize: unknown quantisation 'int4'",
                           "valid: 'none'"),
  }
  for name, (args, start, text) in cases.items():
    code, last = _cli_in_process(args, capsys)
    assert code == 1, name
    assert last.startswith(start) and text in last, (name, last)
  assert sorted(os.walk(run_dir)) == before  # nothing written


@pytest.mark.slow
def test_export_run_python_api(lottery_run, tmp_path):
  run_dir, _ = lottery_run
  assert export.pick_level(run_dir) == 1
  with pytest.raises(ConfigError, match=r'--level: level 5 .* does not '
                     r'exist; finished levels: 0, 1'):
    export.pick_level(run_dir, 5)
  out = tmp_path / 'api'
  (out / 'stray').mkdir(parents=True)
  with pytest.raises(ConfigError, match='--output_dir: .* not empty'):
    export.export_run(run_dir, output_dir=str(out))
  shutil.rmtree(out / 'stray')
  gin.parse_config('training.steps = 777')  # the caller's own config
  report = export.export_run(run_dir, level=1, output_dir=str(out),
                             num_examples=100, quiet=True)
  assert report['passed']
  assert gin.query_parameter('training.steps') == 777  # untouched
  # Re-exporting into an earlier export replaces it.
  report = export.export_run(run_dir, level=1, output_dir=str(out),
                             num_examples=100, quiet=True)
  assert report['passed'] and not os.path.exists(str(out) + '.failed')


def test_failed_check_keeps_artifacts_aside(tmp_path, monkeypatch):
  data = _synthetic((8, 8, 1), n=32)
  model = tt.wrap(models.build_model('lenet_300_100', input_shape=(8, 8, 1),
                                     num_classes=10, mean=data.mean,
                                     std=data.std))
  monkeypatch.setitem(export.CHECKS, 'float32', dict(rtol=-1.0))
  out = tmp_path / 'out'
  with pytest.raises(TicketsError, match='export check failed: .*exceeds'):
    export.export_network(model, data, str(out), formats=('saved_model',),
                          num_examples=32, quiet=True)
  assert not out.exists()
  assert (tmp_path / 'out.failed' / 'report.json').exists()


def _block_lenet(data, partial_rows_active=False):
  model = tt.wrap(models.build_model('lenet_300_100', input_shape=(16, 16, 1),
                                     num_classes=10, mean=data.mean,
                                     std=data.std, seed=1))
  tt.prune_randomly(model, {k: 0.9 for k in wrapper.prunable_entries(model)},
                    seed=3, block=(16, 1))
  if partial_rows_active:  # what a mask ignoring the converter's limit has
    masks = masks_lib.get_masks(model)
    fc2 = masks['fc2']
    fc2[288:] = fc2[272:288][:12]  # copy the last whole block's rows
    masks_lib.set_masks(model, {'fc2': fc2})
    masks_lib.rewind(model, 'init')  # theta_0 * mask: weights there too
  return model


def test_block_sparse_kernels_are_stored_in_blocks_and_run_sparse(tmp_path):
  data = _synthetic((16, 16, 1))
  model = _block_lenet(data)
  report = export.export_network(
      model, data, str(tmp_path / 'export'), quantize=('dynamic',),
      formats=('tflite',), num_examples=64, quiet=True)
  assert report['passed'], report['failures']
  arts = {a['name']: a for a in report['artifacts']}
  for name in ('float32.tflite', 'dynamic.tflite'):
    layers = arts[name]['layers']
    # The converter picks the block: 1x4 for float32 (LiteRT's native float
    # block), 1x16 for int8 where the input depth allows (300 = 18 whole
    # blocks of 16 + the pruned partial block), else 1x4.
    assert all(v['storage'].startswith('blocks') for v in layers.values())
    assert arts[name]['densify_ops'] == 0
    assert all(v['lost'] == 0 for v in layers.values())
  assert arts['dynamic.tflite']['layers']['fc2']['storage'] == 'blocks 1x16'
  assert arts['float32.tflite']['layers']['fc1']['storage'] == 'blocks 1x4'
  # Block storage runs on LiteRT's defaults, the int8 one included.
  assert 'dynamic.tflite' not in (report['runtime_options'] or {})
  assert 'run sparse (block storage): fc1 (1x16)' in export.format_report(
      report)


def test_a_variant_the_converter_damages_in_sparse_storage_is_written_dense(
    tmp_path):
  data = _synthetic((16, 16, 1))
  model = _block_lenet(data, partial_rows_active=True)
  report = export.export_network(model, data, str(tmp_path / 'export'),
                                 quantize=('dynamic',), formats=('tflite',),
                                 num_examples=64, quiet=True)
  assert report['passed'], report['failures']
  arts = {a['name']: a for a in report['artifacts']}
  # In 1x16 int8 blocks the converter drops fc2's trailing partial block
  # (300 = 18 x 16 + 12 inputs); the file is written dense, loses nothing,
  # and the report says why. float32 (1x4 blocks: 300 = 75 x 4) stays.
  name = 'dynamic.tflite'
  assert arts[name]['storage'] == 'dense'
  assert all(v['lost'] == 0 for v in arts[name]['layers'].values())
  assert any('fc2: ' in f and 'active weights are zero' in f
             for f in arts[name]['sparse_storage_failures'])
  assert any(n.startswith(f'{name}: written in dense storage')
             for n in report['notes'])
  assert arts['float32.tflite']['storage'] == 'sparse'


def test_block_float16_that_litert_computes_as_nan_is_written_dense(tmp_path):
  """LiteRT 2.3 returns NaN for float16 kernels in 1x4 block storage (the
  main job's level 15 hit it); that file is written dense and the others
  keep their sparse storage, and a stale OUT.failed goes."""
  data = _synthetic((16, 16, 1))
  model = _block_lenet(data)
  out = tmp_path / 'export'
  (tmp_path / 'export.failed').mkdir()
  report = export.export_network(model, data, str(out),
                                 quantize=('float16',), formats=('tflite',),
                                 num_examples=64, quiet=True)
  assert report['passed'], report['failures']
  arts = {a['name']: a for a in report['artifacts']}
  assert arts['float16.tflite']['storage'] == 'dense'
  assert 'nan' in arts['float16.tflite']['sparse_storage_failures'][0]
  assert arts['float32.tflite']['layers']['fc1']['storage'] == 'blocks 1x4'
  assert not (tmp_path / 'export.failed').exists()
  assert_files_run_on_litert(out, report)


def test_lost_weights_counts_active_weights_only():
  kernel = np.diag([1.0, -0.5, 0.002, 0.0])
  stored = kernel.copy()
  assert export_checks._lost_weights(kernel, stored) == 0  # pylint: disable=protected-access
  stored[:2, :2] = 0  # two active weights lost
  stored[2, 2] = 0  # below one int8 step: quantisation, not a loss
  assert export_checks._lost_weights(kernel, stored) == 2  # pylint: disable=protected-access
  zeros = np.zeros((4, 4))  # nothing active, nothing lost
  assert export_checks._lost_weights(zeros, zeros) == 0  # pylint: disable=protected-access


def _accuracy_at_batch_1(path, option, images, labels):
  """Test accuracy of a .tflite run one image per invoke, as an app does."""
  from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
  it = litert.Interpreter(model_path=str(path),
                          **(_options(option) if option else {}))
  it.allocate_tensors()
  inp = it.get_input_details()[0]
  out = it.get_output_details()[0]
  pred = []
  for image in images:
    it.set_tensor(inp['index'], image[None].astype(np.float32))
    it.invoke()
    pred.append(int(np.argmax(it.get_tensor(out['index']))))
  return float(np.mean(np.array(pred) == labels))


@pytest.mark.slow
def test_readme_export_of_the_main_jobs_sparsest_level(tmp_path):
  """The README's main job (15 levels, down to 3.6% of the weights; short
  levels here) and its export command with every quantisation: exit 0,
  every file runs in LiteRT as its report says, at the accuracy the report
  gives for one image per invoke."""
  run_dir = str(tmp_path / 'lenet_imp')
  proc = cli.train(('gin/lenet_imp.gin',),
                   ('training.steps = 100', 'training.eval_every = 100'),
                   f'--output_dir={run_dir}', '--quiet', timeout=900)
  assert proc.returncode == 0, proc.stderr[-2000:]
  stale = os.path.join(run_dir, 'export', 'level_15.failed')
  os.makedirs(stale)  # what an earlier failed export left
  proc = cli.run('tf_tickets.export', (), (), f'--run_dir={run_dir}',
                 '--quantize=dynamic,int8,float16', timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = os.path.join(run_dir, 'export', 'level_15')
  assert not os.path.exists(stale)
  with open(os.path.join(out, 'report.json')) as f:
    report = json.load(f)
  assert report['source']['level'] == 15 and report['passed']
  assert abs(report['sparsity']['density'] - 0.0358) < 5e-4
  assert_files_run_on_litert(out, report)
  data = data_lib.load_dataset('fashion_mnist', idx_dir=cli.FIXTURE,
                               validation_examples=500)
  images = data.x_test[:report['check_examples']]
  labels = data.y_test[:report['check_examples']]
  for a in report['artifacts']:
    if a['kind'] == 'tflite':
      option = report['runtime_options'].get(a['name'])
      assert a['parity']['accuracy'] == _accuracy_at_batch_1(
          os.path.join(out, a['name']), option, images, labels), a['name']
