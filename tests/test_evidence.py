"""The decision rules of tools/reproduce_lth.py's stability analysis:
a verdict is "shown" only when its 95% CI says so."""
import pytest

from tools import benchlib
from tools import reproduce_lth

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
