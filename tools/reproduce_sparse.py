"""Sparse training on LeNet-300-100 / Fashion-MNIST, with paired evidence.

RigL, SET, static sparse training and GMP at 90/95/98% sparsity (ERK,
every layer sparse), plus the dense network, over paired seeds, at 1x and
5x a base budget, in two protocols:

* `adam`: the LTH LeNet protocol of gin/lenet_<method>.gin (Adam 1.2e-3,
  batch 60, dT = 100, updates until 3/4 of training, drop fraction 0.3
  with cosine decay); the budget is `training.steps = '<E>ep'`;
* `rigl_sgd`: the google-research/rigl MNIST protocol of
  gin/rigl_mnist_protocol.gin (all 60,000 training images in [0, 1],
  batch 100, Nesterov 0.9, lr 0.2 / 3 at epochs 75 and 95 for the sparse
  methods and 60, 70, 80 for dense, weight decay 1e-4, 200 epochs, updates
  until step 50,000, GMP from step 2,000 to 30,000); the budget is
  `training.steps_multiplier` (the RigL paper's Mx runs: steps, milestones
  and the update and pruning steps scale together; 20 epochs is 0.1x the
  reference's 200).

Every run goes through the experiment code (`experiments.run` with the
bindings of the gin files, what `python -m tf_tickets.train` runs) in its own
run directory under --runs, so an interrupted reproduction resumes where it
stopped. Within a seed every arm starts from the same initialisation and
data order, and the sparse methods from the same random initial ERK mask
(GMP starts dense). The measure is the final test accuracy (the RigL
paper's). Nothing is tuned on the test set.

Decision rules (fixed before the runs; reported whatever the outcome): at
each (protocol, budget, sparsity), the paired differences over seeds
RigL - SET, RigL - static and GMP - RigL are "shown" when their 95% t
confidence interval excludes 0, else "not shown"; each setting gets its own
verdict (no count of wins over the correlated settings). The RigL paper's
claim is RigL > SET > static at equal budget.

    python tools/reproduce_sparse.py --seeds 0 1 2 3 4 --epochs 20 \\
        --multiples 1 5 --protocols adam rigl_sgd --write docs/benchmarks.md

Each (protocol, budget) table is its own section of --write, written as
soon as its runs are done, so one table can be added in a later session
(run directories do not outlive a machine; the tables do). Smoke run on
the test fixture (a minute): --quick.
"""
import argparse
import logging as std_logging
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import tf_tickets  # noqa: E402,F401  (tf_keras before TensorFlow)

from tf_tickets import experiments  # noqa: E402
from tf_tickets import runner  # noqa: E402
from tf_tickets.keras import keras  # noqa: E402
from tools import benchlib  # noqa: E402

GIN_DIR = os.path.join(REPO, 'gin')
FIXTURE = os.path.join(REPO, 'tests', 'data', 'fashion_mnist_small')
METHODS = ('rigl', 'set', 'static', 'gmp')
PROTOCOLS = ('adam', 'rigl_sgd')
REFERENCE_EPOCHS = 200  # gin/rigl_mnist_protocol.gin
COMPARISONS = (('rigl', 'set'), ('rigl', 'static'), ('gmp', 'rigl'))


def gin_files(method, protocol):
  files = ['lenet_dense.gin' if method == 'dense' else f'lenet_{method}.gin']
  if protocol == 'rigl_sgd':
    files.append('rigl_mnist_protocol.gin')
  return [os.path.join(GIN_DIR, f) for f in files]


def bindings(args, protocol, epochs, seed, sparsity):
  b = ["dataset.name = 'fashion_mnist'", f"dataset.idx_dir = '{args.idx_dir}'",
       f'training.seed = {seed}', 'training.checkpoint_every = 1000000',
       'training.log_every = 1000']
  if args.quick:  # the fixture is too small for the reference's steps
    b += ['dataset.validation_examples = 500',
          'sparse_training.end_step = 0.75', 'gmp.begin_step = 0.125',
          'gmp.end_step = 0.75', 'gmp.frequency = 5']
  if protocol == 'adam':
    b += [f"training.steps = '{epochs}ep'", "training.eval_every = '5ep'"]
  else:
    b += [f'training.steps_multiplier = {epochs / REFERENCE_EPOCHS!r}']
    if sparsity is None:  # the reference's dense baseline drops the rate
      b.append("training.lr_milestones = ('60ep', '70ep', '80ep')")
  if sparsity is not None:
    b += [f'sparse_training.sparsity = {sparsity}',
          "sparse_training.distribution = 'erk'",
          'sparse_training.dense_first_layer = False']
  return b


def run_one(args, protocol, epochs, method, seed, sparsity=None):
  """Test accuracy (%) of one run through `experiments.run`."""
  name = f'{protocol}-{epochs}ep-{method}-{sparsity or 1.0}-s{seed}'
  keras.backend.clear_session()
  run_settings = runner.read_settings(
      gin_files(method, protocol),
      bindings(args, protocol, epochs, seed, sparsity))
  t = time.time()
  path = os.path.join(args.runs, name)
  # As the command line does: a directory holding a run of other settings
  # is refused, not silently reused; the run is stamped before it trains.
  runner.check_run_dir(path, run_settings)
  ctx = experiments.context(path, run_settings, quiet=True)
  runner.start_run(path, run_settings)
  row = experiments.execute(ctx)[-1]
  print(f'  {name}: test accuracy {row["test_accuracy"]:.4f}, density '
        f'{row["density"]:.4f} ({time.time() - t:.0f}s)', flush=True)
  return 100.0 * row['test_accuracy']


def pm(values):
  s = statistics.stdev(values) if len(values) > 1 else 0.0
  return f'{statistics.mean(values):.2f} ± {s:.2f}'


def section(args, protocol, epochs, acc):
  """Markdown table and verdicts of one (protocol, budget)."""
  dense = acc[('dense', None)]
  lines = [f'**{protocol}, {epochs} epochs** (dense: {pm(dense)})', '',
           '| sparsity | ' + ' | '.join(METHODS) + ' | ' +
           ' | '.join(f'{a} − {b}' for a, b in COMPARISONS) + ' |',
           '|---|' + '---|' * (len(METHODS) + len(COMPARISONS))]
  verdicts = []
  for sparsity in args.sparsities:
    cells = [pm(acc[(m, sparsity)]) for m in METHODS]
    for a, b in COMPARISONS:
      diffs = [x - y for x, y in zip(acc[(a, sparsity)], acc[(b, sparsity)])]
      cells.append(benchlib.fmt_ci(diffs))
      m, h = benchlib.ci(diffs)
      if m - h > 0:
        word = f'{a} better (shown)'
      elif m + h < 0:
        word = f'{b} better (shown)'
      else:
        word = 'not shown'
      verdicts.append(f'{a} vs {b} {word} ({m:+.2f})')
    lines.append(f'| {sparsity:.0%} | ' + ' | '.join(cells) + ' |')
  per = len(COMPARISONS)
  lines += [''] + [
      f'- {sparsity:.0%}: ' + '; '.join(verdicts[i * per:(i + 1) * per]) + '.'
      for i, sparsity in enumerate(args.sparsities)]
  return lines


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
  p.add_argument('--epochs', type=int, default=20, help='the base budget')
  p.add_argument('--multiples', type=int, nargs='+', default=[1, 5])
  p.add_argument('--protocols', nargs='+', choices=PROTOCOLS,
                 default=list(PROTOCOLS))
  p.add_argument('--sparsities', type=float, nargs='+',
                 default=[0.9, 0.95, 0.98])
  p.add_argument('--idx_dir', default='/usr/share/datasets/fashion-mnist')
  p.add_argument('--runs', default=None, help='run directories (default '
                 'runs/sparse_evidence; with --quick runs/sparse_quick)')
  p.add_argument('--write', default=None, help='benchmarks.md to update')
  p.add_argument('--quick', action='store_true',
                 help='smoke run: the test fixture, 1 epoch, 2 seeds, 90%%')
  args = p.parse_args()
  if args.runs is None:  # a smoke run never mixes with the real runs
    args.runs = os.path.join(REPO, 'runs', 'sparse_quick' if args.quick
                             else 'sparse_evidence')
  if args.quick:
    args.idx_dir, args.epochs, args.multiples = FIXTURE, 1, [1]
    args.seeds, args.sparsities = args.seeds[:2], [0.9]
  if len(args.seeds) < 2:
    p.error('--seeds: give at least 2 (the paired CIs need them)')
  if not os.path.isdir(args.idx_dir):
    p.error(f'--idx_dir {args.idx_dir} does not exist (apt-get install '
            'dataset-fashion-mnist)')
  os.makedirs(args.runs, exist_ok=True)
  # gin tries its '' search prefix first and logs a harmless error for
  # `include`d files that it then finds in gin/.
  std_logging.getLogger().addFilter(
      lambda record: 'Path not found' not in record.getMessage())
  header = (
      'LeNet-300-100, Fashion-MNIST (offline IDX files), ERK with every '
      f'layer sparse, seeds {args.seeds} paired (same initialisation, data '
      'order and initial mask within a seed); final test accuracy (%), mean '
      '± std; differences paired by seed, mean [95% CI]. Protocols and '
      'decision rules: `tools/reproduce_sparse.py` (written before the '
      'runs).')
  t0 = time.time()
  for protocol in args.protocols:
    for multiple in args.multiples:
      t = time.time()
      epochs = args.epochs * multiple
      print(f'[{t - t0:7.0f}s] {protocol}, {epochs} epochs', flush=True)
      acc = {('dense', None): [run_one(args, protocol, epochs, 'dense', s)
                               for s in args.seeds]}
      for sparsity in args.sparsities:
        for method in METHODS:
          acc[(method, sparsity)] = [
              run_one(args, protocol, epochs, method, s, sparsity)
              for s in args.seeds]
      cmd = ('python tools/reproduce_sparse.py --seeds ' +
             ' '.join(map(str, args.seeds)) + f' --epochs {args.epochs} '
             f'--multiples {multiple} --protocols {protocol}')
      text = '\n'.join(
          [header, ''] + section(args, protocol, epochs, acc) +
          ['', f'Training wall time in the invocation that wrote this '
           f'table: {(time.time() - t) / 60:.0f} min (finished runs are not '
           'retrained).', '', f'    {cmd}'])
      print(text, flush=True)
      if args.write:  # one section per table: each lands when it is done
        benchlib.update_section(
            args.write, f'sparse_evidence_{protocol}_{epochs}ep', text)


if __name__ == '__main__':
  main()
