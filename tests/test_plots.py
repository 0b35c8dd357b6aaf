"""tools/plot_tickets.py: results.csv files -> the LTH / RigL figures."""
import importlib.util
import os
import subprocess
import sys

import pytest

import cli
from tf_tickets import rundir

pytest.importorskip('matplotlib')

SCRIPT = os.path.join(cli.REPO, 'tools', 'plot_tickets.py')
_spec = importlib.util.spec_from_file_location('plot_tickets', SCRIPT)
plot_tickets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plot_tickets)

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def write_csv(path, rows):
  """results.csv as the experiments write it (the one writer)."""
  rundir.write_results(path, rows)


def lottery_run(run_dir, seed, levels=4):
  """A lottery run with a random_reinit branch, like lottery.run writes."""
  tickets, controls = [], []
  for level in range(levels + 1):
    density = 0.8 ** level
    acc = 0.88 + 0.01 * min(level, 2) - 0.02 * max(0, level - 2) + 0.002 * seed
    row = dict(level=level, method='imp', seed=seed, density=density,
               sparsity=1 - density, test_accuracy=acc,
               early_stop_step=1000 - 100 * min(level, 3) + 10 * seed,
               early_stop_test_accuracy=acc - 0.001)
    tickets.append(dict(row, branch='lottery'))
    if level:
      controls.append(dict(row, branch='random_reinit',
                           test_accuracy=acc - 0.02 * level,
                           early_stop_step=1000 + 50 * level))
  write_csv(os.path.join(run_dir, 'results.csv'), tickets)
  write_csv(os.path.join(run_dir, 'branch_random_reinit', 'results.csv'),
            controls)


def sparse_runs(base):
  dirs = []
  for method, bonus in (('rigl', 0.01), ('set', 0.005), ('static', 0.0)):
    for sparsity in (0.8, 0.9, 0.95):
      for seed in (0, 1):
        d = os.path.join(base, f'{method}-{sparsity}-{seed}')
        write_csv(os.path.join(d, 'results.csv'), [dict(
            level=0, branch='sparse_training', method=method, seed=seed,
            density=1 - sparsity + 1e-4, sparsity=sparsity - 1e-4,
            target_sparsity=sparsity, distribution='erk',
            test_accuracy=0.87 + bonus - 0.1 * (sparsity - 0.8) + 0.001 * seed,
            early_stop_step=900, early_stop_test_accuracy=0.86)])
        dirs.append(d)
  d = os.path.join(base, 'dense')
  write_csv(os.path.join(d, 'results.csv'), [dict(
      level=0, branch='dense', method='dense', seed=0, density=1.0,
      sparsity=0.0, test_accuracy=0.885)])
  return dirs + [d]


def test_writes_png_with_all_panels(tmp_path, capsys):
  runs = [str(tmp_path / f'seed{s}') for s in (0, 1, 2)]
  for seed, d in enumerate(runs):
    lottery_run(d, seed)
  sparse = sparse_runs(str(tmp_path / 'sparse'))
  out = tmp_path / 'out' / 'tickets.png'
  assert plot_tickets.main(runs + sparse + ['-o', str(out)]) == 0
  with open(out, 'rb') as f:
    assert f.read(8) == PNG_MAGIC
  assert 5_000 < os.path.getsize(out) < 400_000
  printed = capsys.readouterr().out
  assert '4 panel(s)' in printed
  assert 'Sparse training: accuracy vs sparsity' in printed


def test_groups_seeds_by_branch_and_level(tmp_path):
  runs = [str(tmp_path / f'seed{s}') for s in (0, 1, 2)]
  for seed, d in enumerate(runs):
    lottery_run(d, seed)
  rows = plot_tickets.read_rows(plot_tickets.find_results(runs))
  assert len(rows) == 3 * (5 + 4)
  (title, _, series), = [p for p in plot_tickets.lottery_panels(rows)
                         if p[0].startswith('Test accuracy (end')]
  assert title and set(series) == {'lottery', 'random_reinit'}
  assert len(series['lottery']) == 5 and len(series['random_reinit']) == 4
  x, mean, low, high, _, n = series['lottery'][-1]  # sorted by x: level 0 last
  assert x == pytest.approx(100.0) and n == 3
  assert (low, mean, high) == pytest.approx((0.88, 0.882, 0.884))
  x, *_ = series['lottery'][0]
  assert x == pytest.approx(100 * 0.8 ** 4)
  # The 95% band of 3 seeds 0.880, 0.882, 0.884: t(2) * std / sqrt(3).
  assert plot_tickets.ci_half_width(series['lottery'][-1]) == pytest.approx(
      4.30265 * 0.002 / 3 ** 0.5, rel=1e-5)
  out = tmp_path / 'bands.png'
  assert len(plot_tickets.plot(rows, str(out), error='ci95')) == 3
  assert out.read_bytes()[:8] == PNG_MAGIC


def test_sparse_panel_one_line_per_method(tmp_path):
  rows = plot_tickets.read_rows(plot_tickets.find_results(
      sparse_runs(str(tmp_path))))
  series = plot_tickets.sparse_panel(rows)
  assert set(series) == {'rigl', 'set', 'static'}
  xs = [p[0] for p in series['rigl']]
  assert xs == pytest.approx([0.8, 0.9, 0.95])  # target sparsity
  assert all(p[5] == 2 for p in series['rigl'])
  assert plot_tickets._dense_accuracy(rows) == pytest.approx(0.885)


def test_only_panels_with_data(tmp_path):
  lottery_run(str(tmp_path / 'lth'), 0)
  lth = plot_tickets.find_results([str(tmp_path / 'lth')])
  titles = plot_tickets.plot(plot_tickets.read_rows(lth),
                             str(tmp_path / 'lth.png'))
  assert len(titles) == 3 and not any('Sparse' in t for t in titles)
  sparse = plot_tickets.read_rows(plot_tickets.find_results(
      sparse_runs(str(tmp_path / 'sparse'))))
  titles = plot_tickets.plot(sparse, str(tmp_path / 'sparse.png'))
  assert titles == ['Sparse training: accuracy vs sparsity']
  with pytest.raises(SystemExit):
    plot_tickets.find_results([str(tmp_path / 'missing')])


@pytest.mark.slow
def test_command_line_on_a_directory_of_runs(tmp_path):
  for seed in (0, 1):
    lottery_run(str(tmp_path / 'runs' / f'seed{seed}'), seed)
  out = tmp_path / 'fig.png'
  proc = subprocess.run(
      [sys.executable, SCRIPT, str(tmp_path / 'runs'), '-o', str(out),
       '--error', 'std'], capture_output=True, text=True, check=False,
      timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert '3 panel(s) from 18 rows of 4 results.csv' in proc.stdout
  assert out.read_bytes()[:8] == PNG_MAGIC


def test_stability_panel_barrier_vs_k(tmp_path):
  for seed in (0, 1):
    write_csv(str(tmp_path / f's{seed}' / 'results.csv'), [
        dict(k=k, level='', branch='stability', method='stability', seed=seed,
             error_barrier=b + 0.01 * seed)
        for k, b in ((0, 0.2), (100, 0.05), (500, 0.0))])
  rows = plot_tickets.read_rows(plot_tickets.find_results(
      [str(tmp_path / 's0'), str(tmp_path / 's1')]))
  series = plot_tickets.stability_panel(rows)
  assert set(series) == {'dense'}
  assert [p[0] for p in series['dense']] == [0, 100, 500]
  assert series['dense'][0][1] == pytest.approx(0.205)
  titles = plot_tickets.plot(rows, str(tmp_path / 'st.png'))
  assert titles == ['Instability: error barrier vs rewind step']


def test_help_answers_at_once_without_tensorflow():
  env = cli.env()
  del env['TF_CPP_MIN_LOG_LEVEL']  # as a user has it
  proc = subprocess.run([sys.executable, SCRIPT, '--help'], env=env,
                        capture_output=True, text=True, check=False,
                        timeout=120)
  assert proc.returncode == 0 and proc.stdout.startswith('usage: ')
  assert proc.stderr == ''  # no TensorFlow start-up lines
  code = ('import runpy, sys; sys.argv = [sys.argv[0], "--help"]\n'
          'try:\n  runpy.run_path(%r, run_name="__main__")\n'
          'except SystemExit:\n  pass\n'
          'print("tensorflow" in sys.modules)' % SCRIPT)
  loaded = subprocess.run([sys.executable, '-c', code], env=env,
                          capture_output=True, text=True, check=False,
                          timeout=120)
  assert loaded.stdout.strip().splitlines()[-1] == 'False'
