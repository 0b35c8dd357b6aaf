"""What checkpoints cost: steady-state training steps/s of one network with
checkpoints by wall time (the default, '60s'), every 1,000 steps (the old
default) and only at the end, measured side by side in ONE process.

Static 90% ERK LeNet-300-100 (Adam, batch 60, Fashion-MNIST, no evaluation
in between, the compiled loop of 100 steps per call): the time from step
`--warmup` to step `--steps` of one `Trainer.fit` (tracing, the start's and
end's evaluations and the final save are outside it). Arms alternate within
each repetition, in reversed order every other repetition; the paired ratio
of each arm's steps/s to the end-only arm's is summarised by its mean and
95% t interval over repetitions.

Decision rule, fixed before the runs (issue "Checkpoints by wall time"):
the default is "within 1% of end-only" if the mean paired ratio is >= 0.99;
an equivalence (no difference beyond 1%) is claimed only if the whole 95%
interval lies within [0.99, 1.01]; otherwise that claim is "not shown".

    python tools/bench_checkpoints.py --repeats 5
"""
import argparse
import os
import statistics
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# pylint: disable=g-import-not-at-top,wrong-import-position
import tf_tickets as tt
from tf_tickets import training
import tensorflow as tf
from tf_tickets import models
from tools import benchlib

ARMS = (('default (60s)', '60s'), ('every 1000 steps', 1000),
        ('end only', 10**9))


def steps_per_second(data, every, warmup, steps):
  config = training.TrainingConfig(
      steps=steps, optimizer='adam', learning_rate=1.2e-3, eval_every=steps,
      checkpoint_every=every, deterministic=False)
  model = tt.wrap(models.build_for(data))
  tt.init_masks(model, 'erk', seed=0, sparsity=0.9)
  clock = benchlib.WindowClock(warmup, steps)
  with tempfile.TemporaryDirectory() as d:
    training.Trainer(model, data, config, tf.distribute.get_strategy(), d,
                     hooks=[clock], quiet=True).fit()
  return (steps - warmup) / (clock.t1 - clock.t0)


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--steps', type=int, default=12000)
  p.add_argument('--warmup', type=int, default=2000)
  p.add_argument('--repeats', type=int, default=5)
  p.add_argument('--idx_dir', default='/usr/share/datasets/fashion-mnist')
  p.add_argument('--doc', default=os.path.join(REPO, 'docs', 'benchmarks.md'))
  p.add_argument('--no_doc', action='store_true')
  args = p.parse_args()
  data = benchlib.load_data(args.idx_dir)
  rates = {name: [] for name, _ in ARMS}
  for r in range(args.repeats):
    order = ARMS if r % 2 == 0 else ARMS[::-1]
    for name, every in order:
      rates[name].append(steps_per_second(data, every, args.warmup,
                                          args.steps))
    print(f'repetition {r + 1}: ' + ', '.join(
        f'{n} {v[-1]:.0f}' for n, v in rates.items()), flush=True)
  end = rates['end only']
  lines = ['| checkpoints | steps/s (median) | ratio to end only: mean '
           '[95% CI] of paired ratios | per repetition |',
           '|---|---|---|---|']
  for name, _ in ARMS:
    ratios = [a / b for a, b in zip(rates[name], end)]
    m, h = benchlib.ci(ratios)
    lines.append(f'| {name} | {statistics.median(rates[name]):.0f} | '
                 f'{m:.3f} [{m - h:.3f}, {m + h:.3f}] | '
                 + ', '.join(f'{x:.3f}' for x in ratios) + ' |')
  ratios = [a / b for a, b in zip(rates['default (60s)'], end)]
  m, h = benchlib.ci(ratios)
  verdict = ('within 1% of end-only (mean ratio >= 0.99)' if m >= 0.99
             else 'NOT within 1% of end-only (mean ratio < 0.99)')
  verdict += ('; equivalent within 1% (95% CI inside [0.99, 1.01])'
              if m - h >= 0.99 and m + h <= 1.01 else
              '; equivalence within 1% not shown (95% CI not inside '
              '[0.99, 1.01])')
  cmd = (f'python tools/bench_checkpoints.py --steps {args.steps} --warmup '
         f'{args.warmup} --repeats {args.repeats}')
  body = (f'Steady-state steps/s of static 90% ERK LeNet-300-100 (Fashion-'
          f'MNIST, batch {data.batch_size}, Adam), steps {args.warmup}..'
          f'{args.steps} of one network, {args.repeats} repetitions with '
          'the arms alternating (reversed every other repetition), paired '
          'ratios to the end-only arm.\n\nCommand: `' + cmd + '`\n\n'
          + '\n'.join(lines) + f'\n\nVerdict (rule in the tool\'s '
          f'docstring, fixed before the runs): the default is {verdict}.\n')
  print(body)
  if not args.no_doc:
    benchlib.update_section(args.doc, 'checkpoints', body)


if __name__ == '__main__':
  main()
