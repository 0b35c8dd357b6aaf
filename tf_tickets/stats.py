"""Paired statistics of runs: Student's t quantiles, the mean and 95% t
interval of paired differences, and the verdicts of pre-registered claims
(the equivalence claim by two one-sided tests, TOST). Pure Python.

A claim about `a - b` (per-seed paired differences) is shown or not:

* 'greater' / 'less': the 95% two-sided interval lies above / below 0;
* 'differs': the 95% interval excludes 0;
* 'not_worse' (non-inferiority, margin m > 0): one-sided 5% test that the
  mean difference is above -m, i.e. the lower end of the 90% interval lies
  above -m;
* 'equivalent' (margin m > 0): TOST at 5%, both one-sided tests reject,
  i.e. the 90% interval lies inside (-m, +m).

Anything else is "not shown": a difference that is not shown is not an
equivalence, and an equivalence is only claimed through TOST.
"""
import math
import statistics

CLAIMS = ('greater', 'less', 'differs', 'not_worse', 'equivalent')


def _betacf(a, b, x):
  """Continued fraction of the incomplete beta function (Lentz)."""
  tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
  d = 1.0 / (d if abs(d) > tiny else tiny)
  h = d
  for m in range(1, 300):
    m2 = 2 * m
    for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
      d = 1.0 + num * d
      d = 1.0 / (d if abs(d) > tiny else tiny)
      c = 1.0 + num / c
      c = c if abs(c) > tiny else tiny
      h *= d * c
    if abs(d * c - 1.0) < 1e-15:
      break
  return h


def _betainc(a, b, x):
  """The regularized incomplete beta function I_x(a, b)."""
  if x <= 0.0:
    return 0.0
  if x >= 1.0:
    return 1.0
  front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                   + a * math.log(x) + b * math.log1p(-x))
  if x < (a + 1.0) / (a + b + 2.0):
    return front * _betacf(a, b, x) / a
  return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t, df):
  """P(T <= t) for Student's t with `df` degrees of freedom."""
  tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
  return 1.0 - tail if t >= 0 else tail


def t_quantile(p, df):
  """The `p` quantile (0.5 < p < 1) of Student's t with `df` >= 1 degrees
  of freedom (bisection on `t_cdf`, to 1e-10)."""
  lo, hi = 0.0, 1e4
  for _ in range(200):
    mid = (lo + hi) / 2
    if t_cdf(mid, df) < p:
      lo = mid
    else:
      hi = mid
  return (lo + hi) / 2


def interval(values, level=0.95):
  """(mean, low, high) of the two-sided t interval of `values` at `level`;
  (mean, -inf, inf) below two values."""
  values = [float(v) for v in values]
  m = statistics.fmean(values)
  n = len(values)
  if n < 2:
    return m, -math.inf, math.inf
  h = (t_quantile(0.5 + level / 2, n - 1) * statistics.stdev(values)
       / math.sqrt(n))
  return m, m - h, m + h


def verdict(differences, claim, margin=None):
  """'shown' or 'not shown' for `claim` (see the module docstring) on the
  per-seed paired differences a - b."""
  if claim not in CLAIMS:
    raise ValueError(f'claim: {claim!r}; valid: {", ".join(CLAIMS)}')
  if claim in ('not_worse', 'equivalent') and not (margin and margin > 0):
    raise ValueError(f'claim {claim!r} needs a margin > 0')
  _, lo95, hi95 = interval(differences, 0.95)
  _, lo90, hi90 = interval(differences, 0.90)
  shown = {'greater': lo95 > 0, 'less': hi95 < 0,
           'differs': lo95 > 0 or hi95 < 0,
           'not_worse': margin is not None and lo90 > -margin,
           'equivalent': margin is not None and -margin < lo90
                         and hi90 < margin}[claim]
  return 'shown' if shown else 'not shown'
