"""Paired statistics against hand computations, and the compare command
line on run directories written by hand."""
import json
import math
import os

import pytest

import cli
from tf_tickets import rundir
from tf_tickets import stats


@pytest.mark.parametrize('p,df,want', [
    (0.975, 1, 12.706), (0.975, 4, 2.776), (0.975, 9, 2.262),
    (0.975, 29, 2.045), (0.95, 4, 2.132), (0.95, 9, 1.833),
    (0.975, 1000, 1.962)])
def test_t_quantiles_are_the_tables(p, df, want):
  assert stats.t_quantile(p, df) == pytest.approx(want, abs=1e-3)


def test_interval_by_hand():
  # mean 3, sd sqrt(2.5), n 5: half-width 2.776 * 1.5811 / sqrt(5) = 1.963
  m, lo, hi = stats.interval([1, 2, 3, 4, 5])
  assert m == 3 and lo == pytest.approx(1.037, abs=1e-3)
  assert hi == pytest.approx(4.963, abs=1e-3)
  m, lo, hi = stats.interval([1, 2, 3, 4, 5], 0.90)  # t 2.132: 1.507
  assert (lo, hi) == (pytest.approx(1.493, abs=1e-3),
                      pytest.approx(4.507, abs=1e-3))
  assert stats.interval([2.0]) == (2.0, -math.inf, math.inf)


def test_verdicts_by_hand():
  assert stats.verdict([1, 2, 3, 4, 5], 'greater') == 'shown'
  assert stats.verdict([1, 2, 3, 4, 5], 'less') == 'not shown'
  assert stats.verdict([-1, 2, 3, -4, 1], 'differs') == 'not shown'
  # TOST: sd 0.0791, 90% half-width 2.132 * 0.0791 / sqrt(5) = 0.0754.
  small = [0.1, -0.1, 0.05, -0.05, 0.0]
  assert stats.verdict(small, 'equivalent', margin=0.5) == 'shown'
  assert stats.verdict(small, 'equivalent', margin=0.07) == 'not shown'
  assert stats.verdict(small, 'differs') == 'not shown'  # not "equivalent"
  # Non-inferiority: mean -0.05, 90% lower end -0.05 - 2.353 * 0.1291 / 2.
  assert stats.verdict([-0.2, -0.1, 0.0, 0.1], 'not_worse',
                       margin=0.25) == 'shown'
  assert stats.verdict([-0.2, -0.1, 0.0, 0.1], 'not_worse',
                       margin=0.15) == 'not shown'
  with pytest.raises(ValueError, match='margin'):
    stats.verdict(small, 'equivalent')


def _fake_runs(root, values):
  """Run directories as the command line leaves them: config.json with
  the settings, results.csv with one row."""
  for (method, seed), accuracy in values.items():
    run_dir = os.path.join(root, f'{method}-{seed}')
    rundir.write_stamp(run_dir, {}, 'x', {
        'training': {'seed': seed}, 'sparse_training': {'method': method,
                                                         'sparsity': 0.9}})
    rundir.write_results(rundir.results_path(run_dir), [dict(
        level=0, branch='sparse_training', density=0.1,
        test_accuracy=accuracy)])


def test_compare_writes_tables_csvs_plot_and_hparams(tmp_path):
  values = {('rigl', 0): 0.90, ('rigl', 1): 0.92, ('rigl', 2): 0.91,
            ('set', 0): 0.89, ('set', 1): 0.90, ('set', 2): 0.91}
  _fake_runs(str(tmp_path / 'runs'), values)
  rules = dict(written='2000-01-01', metric='test_accuracy', scale=100,
               arms='sparse_training.method',
               groups=['sparse_training.sparsity'],
               comparisons=[dict(a='rigl', b='set', claim='greater'),
                            dict(a='rigl', b='set', claim='equivalent',
                                 margin=2.0)])
  (tmp_path / 'rules.json').write_text(json.dumps(rules))
  runs = [str(tmp_path / 'runs' / d) for d in sorted(os.listdir(
      tmp_path / 'runs'))]
  out = tmp_path / 'out'
  proc = cli.run('tf_tickets.compare', (), (), *[f'--runs={r}' for r in runs],
                 f'--rules={tmp_path / "rules.json"}', f'--out={out}')
  assert proc.returncode == 0, proc.stderr[-2000:]
  # Differences rigl - set, in points: 1, 2, 0 -> mean 1, sd 1, n 3:
  # 95% half-width 4.303 / sqrt(3) = 2.484; 90%: 2.920 / sqrt(3) = 1.686.
  table = (out / 'comparison.md').read_text()
  assert '| rigl - set | +1.00 [-1.48, +3.48] | [-0.69, +2.69] | greater ' \
         '| not shown |' in table
  assert 'equivalent (margin 2.0) | not shown |' in table
  assert 'not fixed before the runs' not in table
  per_seed = (out / 'per_seed.csv').read_text().splitlines()
  assert per_seed[0] == ('sparse_training.sparsity,arm,seed,test_accuracy,'
                         'run_dir') and len(per_seed) == 7
  assert any(line.startswith('0.9,rigl,1,92.0') for line in per_seed)
  assert (out / 'plot.png').stat().st_size > 1000
  assert tuple(out.glob('hparams/run_*/events.out.tfevents.*'))
  # Rules dated after the runs are reported as such.
  (tmp_path / 'late.json').write_text(json.dumps(dict(rules,
                                                      written='2999-01-01')))
  late = cli.run('tf_tickets.compare', (), (), f'--runs={runs[0]}',
                 f'--runs={runs[3]}', f'--rules={tmp_path / "late.json"}',
                 f'--out={tmp_path / "late"}')
  assert late.returncode == 0, late.stderr[-2000:]
  assert 'not fixed before the runs' in (tmp_path / 'late' /
                                         'comparison.md').read_text()
  # A claim of equivalence without its margin: one error line.
  bad = dict(rules, comparisons=[dict(a='rigl', b='set',
                                      claim='equivalent')])
  (tmp_path / 'bad.json').write_text(json.dumps(bad))
  proc = cli.run('tf_tickets.compare', (), (), f'--runs={runs[0]}',
                 f'--rules={tmp_path / "bad.json"}')
  assert proc.returncode == 1
  assert cli.last_line(proc).startswith('error: --rules: ') and (
      'margin' in cli.last_line(proc))


def test_the_committed_rules_files_are_valid():
  """docs/results/*.rules.json parse and name valid claims and margins."""
  import glob  # pylint: disable=g-import-not-at-top
  from tf_tickets import comparing  # pylint: disable=g-import-not-at-top
  paths = glob.glob(os.path.join(cli.REPO, 'docs', 'results', '*.rules.json'))
  assert len(paths) >= 2
  for path in paths:
    rules = comparing.read_rules(path)
    assert rules['written'] and rules['comparisons'], path
