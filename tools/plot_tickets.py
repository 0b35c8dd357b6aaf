"""Plots lottery-ticket and sparse-training results (the papers' figures).

  python tools/plot_tickets.py RUN_DIR [RUN_DIR ...] -o out.png

Reads `RUN_DIR/results.csv` and `RUN_DIR/branch_*/results.csv` of every run
directory given (a directory without results.csv is searched one level down,
so `runs/` works too; a .csv path is read as is) and draws the figures of `tf_tickets.summaries.figures` (lottery tickets, sparse
training, instability; the panels that have data). Rows of several run
directories with the same branch and level (or method and sparsity) are
runs of different seeds: `--error minmax` (as in the LTH paper), `std`, or
`ci95` (a band of the 95% t confidence interval of the mean). Finds the
files with `tf_tickets.rundir` (the one place that knows the run-directory
layout). `--help` answers before TensorFlow loads.
"""
import argparse
import glob
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def parser():
  p = argparse.ArgumentParser(
      description='Plots lottery-ticket and sparse-training results.')
  p.add_argument('run_dirs', nargs='+', metavar='RUN_DIR',
                 help='run directories (several: seeds), or runs/')
  p.add_argument('-o', '--output', default='tickets.png',
                 help='output image (.png, .pdf, .svg)')
  p.add_argument('--error', choices=('minmax', 'std', 'ci95'),
                 default='minmax',
                 help='error bars over seeds: min..max, +-1 std, or a band '
                 'of the 95%% confidence interval of the mean')
  p.add_argument('--title', default=None)
  p.add_argument('--dpi', type=int, default=100)
  return p


if __name__ == '__main__':  # --help and usage errors before TensorFlow loads
  _ARGS = parser().parse_args()

# pylint: disable=g-import-not-at-top,wrong-import-position
from tf_tickets import console
with console.native_noise_filtered():
  from tf_tickets import rundir
  from tf_tickets.summaries.figures import _dense_accuracy  # noqa: F401
  from tf_tickets.summaries.figures import ci_half_width  # noqa: F401
  from tf_tickets.summaries.figures import lottery_panels  # noqa: F401
  from tf_tickets.summaries.figures import plot as _plot
  from tf_tickets.summaries.figures import sparse_panel  # noqa: F401
  from tf_tickets.summaries.figures import stability_panel  # noqa: F401
# pylint: enable=g-import-not-at-top,wrong-import-position


def find_results(paths):
  """results.csv files of the given run directories (or .csv paths)."""
  files = []
  for path in paths:
    if os.path.isfile(path):
      found = [path]
    else:
      found = _results_in(path)
      if not found:  # a directory of run directories, e.g. runs/
        for sub in sorted(glob.glob(os.path.join(path, '*', ''))):
          found += _results_in(sub)
    if not found:
      raise SystemExit(f'error: no results.csv in {path!r} (nor in its '
                       'branch_*/ or sub-directories)')
    for f in found:
      f = os.path.abspath(f)
      if f not in files:
        files.append(f)
  return files


def _results_in(run_dir):
  return rundir.find_results(run_dir)


def read_rows(files):
  rows = []
  for path in files:
    for row in rundir.read_results(path):
      row['_source'] = path
      rows.append(row)
  return rows


def plot(rows, out, error='minmax', title=None, dpi=100):
  """`figures.plot`, its errors as a one-line exit."""
  try:
    return _plot(rows, out, error=error, title=title, dpi=dpi)
  except ValueError as e:
    raise SystemExit(f'error: {e}') from None


def main(argv=None):
  args = parser().parse_args(argv)
  files = find_results(args.run_dirs)
  rows = read_rows(files)
  titles = plot(rows, args.output, error=args.error, title=args.title,
                dpi=args.dpi)
  print(f'{args.output}: {len(titles)} panel(s) from {len(rows)} rows of '
        f'{len(files)} results.csv file(s): {"; ".join(titles)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
