"""The loop's speed at two commits, paired on this machine: is a change a
regression?

Steady-state steps/s of static 90% ERK LeNet-300-100 (Fashion-MNIST, Adam,
batch 60) with evaluation and loss logging every 100 steps (the LTH
protocol) and checkpoints only at the end, steps `--warmup`..`--steps`,
each measurement a fresh process of the checkout (a git worktree of
`--base` beside this one); the two alternate, in reversed order every
other repetition. Prints the paired ratios (this checkout / base), their
mean and 95% t interval. Decision rule, fixed before the runs: a
regression is shown if the whole interval lies below 0.99, no regression
beyond 1% only if its lower end is >= 0.99; otherwise "not shown".

    python tools/bench_commits.py --base 8c4e4c3 --repeats 5
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker(checkout, warmup, steps, idx_dir):
  """One measurement with the package of `checkout` (run in a child)."""
  sys.path.insert(0, checkout)
  # pylint: disable=g-import-not-at-top
  import tf_tickets as tt
  from tf_tickets import data as data_lib
  from tf_tickets import models
  from tf_tickets import summaries
  from tf_tickets import training
  import tensorflow as tf

  class Clock(training.Hook):
    def __init__(self):
      self.t = {}

    def next_event(self, step):
      return warmup if step < warmup else steps

    def after_step(self, ctx, step, grads):
      self.t[step] = time.perf_counter()

  data = data_lib.load_dataset('fashion_mnist', idx_dir=idx_dir)
  config = training.TrainingConfig(steps=steps, eval_every=100,
                                   log_every=100, checkpoint_every=10**9,
                                   deterministic=False)
  model = tt.wrap(models.build_model(
      'lenet_300_100', input_shape=data.input_shape, num_classes=10,
      mean=data.mean, std=data.std, seed=0))
  tt.init_masks(model, 'erk', seed=0, sparsity=0.9)
  clock = Clock()
  hooks = [clock]
  if hasattr(summaries, 'TrainingScalars'):  # the writer of the loop's
    hooks.append(summaries.TrainingScalars())  # scalars since issue 30
  with tempfile.TemporaryDirectory() as d:
    training.Trainer(model, data, config, tf.distribute.get_strategy(), d,
                     hooks=hooks, writer=tf.summary.create_file_writer(d),
                     quiet=True).fit()
  return (steps - warmup) / (clock.t[steps] - clock.t[warmup])


def measure(checkout, args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  out = subprocess.run(
      [sys.executable, os.path.abspath(__file__), '--worker', checkout,
       '--warmup', str(args.warmup), '--steps', str(args.steps),
       '--idx_dir', args.idx_dir], env=env, cwd=checkout,
      capture_output=True, text=True, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--base', default='HEAD~1')
  p.add_argument('--repeats', type=int, default=5)
  p.add_argument('--warmup', type=int, default=2000)
  p.add_argument('--steps', type=int, default=12000)
  p.add_argument('--idx_dir', default='/usr/share/datasets/fashion-mnist')
  p.add_argument('--worker', default=None, help=argparse.SUPPRESS)
  p.add_argument('--doc', default=os.path.join(REPO, 'docs', 'benchmarks.md'))
  p.add_argument('--no_doc', action='store_true')
  args = p.parse_args()
  if args.worker:
    print(json.dumps(worker(args.worker, args.warmup, args.steps,
                            args.idx_dir)))
    return
  sys.path.insert(0, REPO)
  from tools import benchlib  # pylint: disable=g-import-not-at-top
  base = subprocess.run(['git', 'rev-parse', '--short', args.base], cwd=REPO,
                        capture_output=True, text=True,
                        check=True).stdout.strip()
  head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO,
                        capture_output=True, text=True,
                        check=True).stdout.strip()
  with tempfile.TemporaryDirectory() as tmp:
    old = os.path.join(tmp, 'base')
    subprocess.run(['git', 'worktree', 'add', '-q', '--detach', old, base],
                   cwd=REPO, check=True)
    try:
      ratios = []
      for r in range(args.repeats):
        arms = [('base', old), ('head', REPO)]
        got = {name: measure(path, args)
               for name, path in (arms if r % 2 == 0 else arms[::-1])}
        ratios.append(got['head'] / got['base'])
        print(f'repetition {r + 1}: base {got["base"]:.0f} steps/s, this '
              f'checkout {got["head"]:.0f}, ratio {ratios[-1]:.3f}',
              flush=True)
    finally:
      subprocess.run(['git', 'worktree', 'remove', '--force', old], cwd=REPO,
                     check=False)
  m, h = benchlib.ci(ratios)
  verdict = ('a regression is shown' if m + h < 0.99 else
             'no regression beyond 1% is shown' if m - h >= 0.99 else
             'neither a regression nor its absence is shown (the interval '
             'spans 0.99)')
  body = (f'Loop speed of {head} against {base} (static 90% ERK '
          'LeNet-300-100, evaluation and logging every 100 steps, steps '
          f'{args.warmup}..{args.steps}, a fresh process per measurement, '
          f'{args.repeats} alternating repetitions).\n\nCommand: `python '
          f'tools/bench_commits.py --base {base} --repeats {args.repeats}`'
          f'\n\nRatios {head}/{base}: '
          + ', '.join(f'{x:.3f}' for x in ratios)
          + f'; mean {m:.3f} [95% CI {m - h:.3f}, {m + h:.3f}]: {verdict}.\n')
  print(body)
  if not args.no_doc:
    benchlib.update_section(args.doc, 'commits', body)


if __name__ == '__main__':
  main()
