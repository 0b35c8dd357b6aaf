"""Evaluation overhead of frequent early-stopping validation (LTH protocol).

Trains LeNet-300-100 on Fashion-MNIST (batch 60, Adam 1.2e-3, 5,000
validation examples) for `--steps` steps with validation every 100 steps
(the LTH paper's protocol, `gin/lenet_imp.gin`) and with validation only at
the end, interleaved in one process, and prints the ratio of the times.

  python tools/bench_eval.py --idx_dir /usr/share/datasets/fashion-mnist \
      [--steps 3000] [--repeats 3] [--write docs/benchmarks.md]
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tf_tickets as tt  # noqa: E402  (tf_keras before TensorFlow)
import tensorflow as tf  # noqa: E402

from tf_tickets import data as data_lib  # noqa: E402
from tf_tickets import models  # noqa: E402
from tf_tickets import training  # noqa: E402
from tools import benchlib  # noqa: E402


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--idx_dir', default='/usr/share/datasets/fashion-mnist')
  parser.add_argument('--steps', type=int, default=3000)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--write', default=None)
  args = parser.parse_args()
  tf.config.experimental.enable_op_determinism()
  data = data_lib.load_dataset('fashion_mnist', idx_dir=args.idx_dir)
  tmp = tempfile.mkdtemp()
  count = [0]

  def arm(eval_every):
    def go():
      count[0] += 1
      model = tt.wrap(models.build_for(data))
      config = training.TrainingConfig(steps=args.steps,
                                       eval_every=eval_every,
                                       checkpoint_every=5000)
      training.Trainer(model, data, config, tf.distribute.get_strategy(),
                       os.path.join(tmp, str(count[0])), quiet=True).fit()
    return go

  times = benchlib.interleaved({'every 100 steps': arm(100),
                                'at the end only': arm(args.steps)},
                               args.repeats)
  every = benchlib.median(times['every 100 steps'])
  end = benchlib.median(times['at the end only'])
  ratios = sorted(a / b for a, b in zip(times['every 100 steps'],
                                        times['at the end only']))
  spread = lambda v: f'{min(v):.2f}–{max(v):.2f}'

  lines = [
      '## Early-stopping evaluation overhead (LeNet-300-100, Fashion-MNIST)',
      '',
      f'{args.steps} steps, batch 60, validation on 5,000 examples; median of '
      f'{args.repeats} interleaved runs each (whole `Trainer.fit`, tracing '
      'included):',
      '',
      '| validation | seconds (median) | seconds (min–max) |',
      '|---|---|---|',
      f'| every 100 steps | {every:.2f} | {spread(times["every 100 steps"])} |',
      f'| at the end only | {end:.2f} | {spread(times["at the end only"])} |',
      '',
      f'Overhead of validating every 100 steps: {100 * (every / end - 1):.1f}%'
      ' of training time (ratio of medians; per-repetition paired ratios '
      f'{", ".join(f"{r:.3f}" for r in ratios)}; target: at most 20%).', '',
      'Command: `python tools/bench_eval.py --idx_dir '
      f'/usr/share/datasets/fashion-mnist --steps {args.steps} --repeats '
      f'{args.repeats}`']
  benchlib.publish(lines, args.write, 'eval-overhead')


if __name__ == '__main__':
  main()
