"""The papers' figures from results rows (results.csv, or the rows of a
run in progress): lottery tickets (Frankle & Carbin, ICLR 2019, Figures
3-4), sparse training (Evci et al., ICML 2020, Figure 2) and instability
(Frankle et al., ICML 2020).

* lottery tickets: test accuracy at the end of training, early-stop step
  and test accuracy at the early-stop step against the percent of weights
  remaining (log scale, decreasing to the right), one line per branch (the
  IMP tickets and their control branches random_reinit / random_prune);
* sparse training: test accuracy against sparsity (the configured
  `target_sparsity` if the row has it), one line per method (and
  distribution, if several), the dense accuracy as a dashed line;
* instability: error barrier against the rewind step k.

Rows with the same branch and level (or method and sparsity) are runs of
different seeds: the line is their mean and the error bars span their
minimum and maximum (`error='minmax'`, as in the LTH paper), +-1 standard
deviation (`'std'`), or a shaded band of the 95% t confidence interval of
the mean (`'ci95'`).

`tools/plot_tickets.py` draws them from run directories; `LevelSummaries`
writes the lottery panels into TensorBoard after every level. Drawn with
matplotlib's object API (no pyplot: the process's backend is left alone).
"""
import collections
import io
import math
import os

from matplotlib import ticker
from matplotlib.figure import Figure
from PIL import Image

from tf_tickets import stats

BRANCH_LABELS = {
    'lottery': 'winning ticket (IMP)',
    'random_reinit': 'random reinit',
    'random_prune': 'random pruning',
}
BRANCH_STYLES = {
    'lottery': dict(color='tab:blue', marker='o'),
    'random_reinit': dict(color='tab:orange', marker='s', linestyle='--'),
    'random_prune': dict(color='tab:green', marker='^', linestyle=':'),
}
NOT_SPARSE_TRAINING = ('imp', 'dense', '')

def _float(value):
  try:
    v = float(value)
  except (TypeError, ValueError):
    return None
  return v if math.isfinite(v) else None


def aggregate(rows, key_fn, x_field, y_field, x_scale=1.0):
  """{series: [(x mean, y mean, y low, y high, y std, n), ...] sorted by x}."""
  groups = collections.OrderedDict()
  for row in rows:
    key = key_fn(row)
    x, y = _float(row.get(x_field)), _float(row.get(y_field))
    if key is None or x is None or y is None:
      continue
    series, point = key
    groups.setdefault(series, collections.OrderedDict()).setdefault(
        point, []).append((x * x_scale, y))
  out = collections.OrderedDict()
  for series, points in groups.items():
    line = []
    for values in points.values():
      xs = [v[0] for v in values]
      ys = [v[1] for v in values]
      mean = sum(ys) / len(ys)
      std = (math.sqrt(sum((y - mean) ** 2 for y in ys) / (len(ys) - 1))
             if len(ys) > 1 else 0.0)
      line.append((sum(xs) / len(xs), mean, min(ys), max(ys), std, len(ys)))
    out[series] = sorted(line)
  return out


def _lottery_rows(rows):
  return [r for r in rows if r.get('method') == 'imp']


def _sparse_rows(rows):
  return [r for r in rows if r.get('method', '') not in NOT_SPARSE_TRAINING]


def _dense_accuracy(rows):
  accs = [_float(r.get('test_accuracy')) for r in rows
          if r.get('method') == 'dense']
  accs = [a for a in accs if a is not None]
  return sum(accs) / len(accs) if accs else None


def ci_half_width(point):
  """Half-width of the 95% t confidence interval of an `aggregate` point's
  mean (0 for a single seed)."""
  n, std = point[5], point[4]
  if n < 2:
    return 0.0
  return stats.t_quantile(0.975, n - 1) * std / math.sqrt(n)


def _errorbar(ax, line, error, **style):
  xs = [p[0] for p in line]
  ys = [p[1] for p in line]
  if error == 'ci95':  # a band: mean +- t * std / sqrt(n)
    drawn, = ax.plot(xs, ys, markersize=4, linewidth=1.5, **style)
    half = [ci_half_width(p) for p in line]
    ax.fill_between(xs, [y - h for y, h in zip(ys, half)],
                    [y + h for y, h in zip(ys, half)],
                    color=drawn.get_color(), alpha=0.2, linewidth=0)
    return
  if error == 'std':
    yerr = [[p[4] for p in line], [p[4] for p in line]]
  else:
    yerr = [[p[1] - p[2] for p in line], [p[3] - p[1] for p in line]]
  if max(p[5] for p in line) < 2:
    yerr = None
  ax.errorbar(xs, ys, yerr=yerr, capsize=3, markersize=4, linewidth=1.5,
              **style)


def _percent_axis(ax, xs):
  ax.set_xscale('log')
  lo, hi = min(xs), max(xs)
  ax.set_xlim(hi * 1.15, lo / 1.15)  # decreasing to the right
  ticks = sorted(set(round(x, 1) for x in xs), reverse=True)
  if len(ticks) > 8:
    step = math.ceil(len(ticks) / 8)
    ticks = ticks[::step]
  ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
  ax.xaxis.set_minor_locator(ticker.NullLocator())
  ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f'{v:g}'))
  ax.set_xlabel('percent of weights remaining')


def lottery_panels(rows):
  """(title, y label, series) of the lottery panels that have data."""
  rows = _lottery_rows(rows)
  key = lambda r: (r.get('branch') or 'lottery', r.get('level'))
  panels = []
  for field, title, label in (
      ('test_accuracy', 'Test accuracy (end of training)', 'test accuracy'),
      ('early_stop_step', 'Early-stop step (min. validation loss)',
       'early-stop step'),
      ('early_stop_test_accuracy', 'Test accuracy at early stop',
       'test accuracy')):
    series = aggregate(rows, key, 'density', field, x_scale=100.0)
    if series:
      panels.append((title, label, series))
  return panels


def sparse_panel(rows):
  rows = _sparse_rows(rows)
  distributions = {r.get('distribution') for r in rows
                   if r.get('distribution')}

  for r in rows:  # the configured sparsity, else the measured one
    r['_sparsity'] = r.get('target_sparsity') or r.get('sparsity')

  def key(r):
    s = _float(r.get('_sparsity'))
    if s is None:
      return None
    name = r['method']
    if len(distributions) > 1:
      name += f' ({r.get("distribution")})'
    return name, round(s, 4)

  return aggregate(rows, key, '_sparsity', 'test_accuracy')


def stability_panel(rows):
  """Error barrier vs rewind step k, one line per network analysed."""
  rows = [r for r in rows if r.get('method') == 'stability']
  key = lambda r: ('dense' if r.get('level') in ('', None) else
                   f'level {r["level"]}', r.get('k'))
  return aggregate(rows, key, 'k', 'error_barrier')


def _series_panel(ax, series, error, line_at, line_label, xlabel, ylabel,
                  title):
  """One line per series (mean and error bars), a grey reference line."""
  for i, (name, line) in enumerate(series_sorted(series)):
    seeds = max(p[5] for p in line)
    _errorbar(ax, line, error, label=f'{name} (n={seeds})',
              marker='os^dvx*'[i % 7])
  if line_at is not None:
    ax.axhline(line_at, color='grey', linestyle='--', linewidth=1,
               label=line_label)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=10)
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=7)
  return title


def draw(rows, error='minmax', title=None):
  """The panels that have data as a matplotlib Figure; returns (figure,
  panel titles). Raises ValueError when no panel has data."""
  lottery = lottery_panels(rows)
  sparse = sparse_panel(rows)
  stability = stability_panel(rows)
  dense = _dense_accuracy(rows)
  n = len(lottery) + (1 if sparse else 0) + (1 if stability else 0)
  if not n:
    raise ValueError('the results hold no lottery (method imp), '
                     'sparse-training or stability rows to plot')
  cols = 2 if n == 4 else n
  rows_ = math.ceil(n / cols)
  fig = Figure(figsize=(4.8 * cols, 3.6 * rows_))
  axes = list(fig.subplots(rows_, cols, squeeze=False).reshape(-1))
  titles = []
  for ax, (panel_title, label, series) in zip(axes, lottery):
    xs = []
    for branch, line in series.items():
      seeds = max(p[5] for p in line)
      style = BRANCH_STYLES.get(branch, dict(marker='d'))
      _errorbar(ax, line, error, label=f'{BRANCH_LABELS.get(branch, branch)}'
                f' (n={seeds})', **style)
      xs += [p[0] for p in line]
    _percent_axis(ax, xs)
    ax.set_ylabel(label)
    ax.set_title(panel_title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    titles.append(panel_title)
  if stability:
    titles.append(_series_panel(
        axes[len(lottery)], stability, error, 0.0, None, 'rewind step k',
        'error barrier (test)', 'Instability: error barrier vs rewind step'))
  if sparse:
    titles.append(_series_panel(
        axes[-1], sparse, error, dense, 'dense', 'sparsity', 'test accuracy',
        'Sparse training: accuracy vs sparsity'))
  if title:
    fig.suptitle(title, fontsize=11)
  fig.tight_layout()
  return fig, titles


def plot(rows, out, error='minmax', title=None, dpi=100):
  """Draws the panels that have data into the file `out` (.png, .pdf,
  .svg); returns their titles."""
  fig, titles = draw(rows, error, title)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  fig.savefig(out, dpi=dpi)
  if out.lower().endswith('.png'):
    _shrink_png(out)
  return titles


def png(rows, error='minmax', title=None, dpi=80):
  """The panels as PNG bytes (for an image summary)."""
  fig, _ = draw(rows, error, title)
  buf = io.BytesIO()
  fig.savefig(buf, format='png', dpi=dpi)
  return buf.getvalue()


def _shrink_png(path):
  """Rewrites a PNG with a 256-colour palette (a few times smaller)."""
  with Image.open(path) as img:
    small = img.convert('RGB').quantize(256)
  small.save(path, optimize=True)


def series_sorted(series):
  return sorted(series.items())
