"""The decision rules of the reproduction tools (tools/reproduce_*.py):
a verdict is "shown" only when its 95% CI says so."""
import pytest

from tools import benchlib
from tools import reproduce_lth
from tools import reproduce_sparse

SEEDS = (0, 1, 2, 3, 4)


def test_ci_is_the_t_interval_of_the_mean():
  m, h = benchlib.ci([1.0, 2.0, 3.0])
  assert m == 2.0
  # t(0.975, 2) s / sqrt(n), s = 1; t(0.975, 2) = 4.30265 (tables: 4.303)
  assert h == pytest.approx(4.30265 / 3 ** 0.5, abs=1e-5)


def _stability(dense, ticket, ks=(0,)):
  res = {}
  for i, s in enumerate(SEEDS):
    res[('dense', s)] = {k: dense[i] for k in ks}
    res[('ticket', s)] = {k: ticket[i] for k in ks}
  return reproduce_lth.stability_report(res, SEEDS, list(ks), 5, 32.8)


def test_stability_verdicts_follow_the_confidence_intervals():
  lines, verdicts = _stability(dense=[5.0, 5.2, 4.8, 5.1, 4.9],
                               ticket=[0.1, 0.2, 0.1, 0.15, 0.12])
  assert lines[2].startswith('| 0 | +5.00 [')
  dense, ticket, diff = verdicts
  assert 'dense, k = 0' in dense and 'unstable (shown)' in dense
  assert 'level-5 ticket (32.8%), k = 0' in ticket
  assert 'stable (shown)' in ticket and 'unstable' not in ticket
  assert 'the ticket is more stable (shown)' in diff


def test_a_barrier_whose_interval_straddles_the_threshold_is_not_shown():
  _, verdicts = _stability(dense=[0.0, 4.0, 0.0, 4.0, 1.0],
                           ticket=[0.0, 4.0, 0.0, 4.0, 1.5])
  assert all(v.endswith('**not shown**.') for v in verdicts[:2])
  assert 'ticket − dense barrier +0.10' in verdicts[2]
  assert verdicts[2].endswith('**not shown**.')  # 4 zero diffs, one +0.5


def test_sparse_verdicts_are_one_per_setting_and_paired_by_seed():
  class Args:
    sparsities = [0.9]
  base = [88.0, 86.0, 89.0, 87.0, 85.0]  # seed effects larger than the gaps
  acc = {('dense', None): base,
         ('rigl', 0.9): [a + 0.5 for a in base],
         ('set', 0.9): [a + 0.5 + d for a, d in
                        zip(base, (0.1, -0.1, 0.05, -0.05, 0.0))],
         ('static', 0.9): [a - 0.3 for a in base],
         ('gmp', 0.9): [a + 0.8 for a in base]}
  lines = reproduce_sparse.section(Args, 'adam', 20, acc)
  verdict = lines[-1]
  assert verdict.startswith('- 90%: ')
  assert 'rigl vs set not shown (+0.00)' in verdict
  assert 'rigl vs static rigl better (shown) (+0.80)' in verdict
  assert 'gmp vs rigl gmp better (shown) (+0.30)' in verdict


def test_reproduce_sparse_refuses_a_finished_run_of_other_settings(
    tmp_path, monkeypatch):
  """A rerun with changed settings under the same point name is refused
  (as the command line refuses it), not silently reused."""
  import pytest  # pylint: disable=g-import-not-at-top
  import cli  # pylint: disable=g-import-not-at-top
  from tf_tickets.errors import ConfigError  # pylint: disable=g-import-not-at-top

  class Args:
    idx_dir, quick, runs = cli.FIXTURE, True, str(tmp_path)

  acc = reproduce_sparse.run_one(Args, 'adam', 1, 'static', 0, 0.9)
  assert 0 < acc <= 100
  again = reproduce_sparse.run_one(Args, 'adam', 1, 'static', 0, 0.9)
  assert again == acc  # finished: reused
  real = reproduce_sparse.bindings
  monkeypatch.setattr(reproduce_sparse, 'bindings', lambda *a: real(*a) + [
      'training.learning_rate = 0.5'])
  with pytest.raises(ConfigError, match='--output_dir: .* holds a run with '
                     'a different configuration'):
    reproduce_sparse.run_one(Args, 'adam', 1, 'static', 0, 0.9)
