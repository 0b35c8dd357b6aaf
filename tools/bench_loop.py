"""Overhead of the tf_tickets training loop against a bare `model.fit`.

Times steps/second in ONE process, interleaved round-robin, on the same
data pipeline (`tf_tickets.data.train_dataset`), optimizer (Adam) and model:

* loop: `tf_tickets.training.Trainer` (the loop every experiment uses, with
  its loss logging, hooks and step bookkeeping) on the wrapped model;
* fit(wrapped): `model.fit` on the same wrapped model — the difference to
  `loop` is the loop's own overhead (target <= 5%);
* fit(plain): `model.fit` on the plain dense tf_keras model — the whole
  cost of a dense run through tf_tickets.

Only steps [warmup, steps] are timed, so tracing, the evaluations at the
start and end, and the final checkpoint are excluded from all variants.

    python tools/bench_loop.py --steps 600 --repeats 5
"""

import argparse
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# pylint: disable=g-import-not-at-top,wrong-import-position
import tf_tickets as tt
from tf_tickets import data as data_lib
from tf_tickets import keras
from tf_tickets import models
from tf_tickets import training
import tensorflow as tf
from tools import benchlib

WARMUP = 20


class _FitClock(keras.callbacks.Callback):

  def __init__(self, steps):
    super().__init__()
    self.steps, self.t0, self.t1 = steps, None, None

  def on_train_batch_end(self, batch, logs=None):
    if batch + 1 == WARMUP:
      self.t0 = time.perf_counter()
    elif batch + 1 == self.steps:
      self.t1 = time.perf_counter()


def load_data(idx_dir):
  if os.path.isdir(idx_dir):
    return data_lib.load_dataset('fashion_mnist', idx_dir=idx_dir)
  fixture = os.path.join(REPO, 'tests', 'data', 'fashion_mnist_small')
  return data_lib.load_dataset('fashion_mnist', idx_dir=fixture,
                               validation_examples=500)


def build(name, data):
  return models.build_model(name, input_shape=data.input_shape,
                            num_classes=data.num_classes, mean=data.mean,
                            std=data.std, seed=0)


def bench(name, data, steps, repeats):
  config = training.TrainingConfig(
      steps=steps, optimizer='adam', learning_rate=1e-3, eval_every=steps,
      checkpoint_every=10 * steps, deterministic=False)
  strategy = tf.distribute.get_strategy()
  wrapped_for_loop = tt.wrap(build(name, data))
  wrapped_for_fit = tt.wrap(build(name, data))
  plain = build(name, data)
  loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  for m in (wrapped_for_fit, plain):
    m.compile(keras.optimizers.Adam(1e-3), loss)

  def loop():
    clock = benchlib.WindowClock(WARMUP, steps)  # the chunks runs use
    with tempfile.TemporaryDirectory() as d:
      training.Trainer(wrapped_for_loop, data, config, strategy, d,
                       hooks=[clock], quiet=True).fit()
    return (clock.t1 - clock.t0) / (steps - WARMUP)

  def fit(model):
    def run():
      clock = _FitClock(steps)
      model.fit(data_lib.train_dataset(data, 0), steps_per_epoch=steps,
                epochs=1, verbose=0, callbacks=[clock])
      return (clock.t1 - clock.t0) / (steps - WARMUP)
    return run

  per_step = {'loop': [], 'fit(wrapped)': [], 'fit(plain)': []}
  fns = {'loop': loop, 'fit(wrapped)': fit(wrapped_for_fit),
         'fit(plain)': fit(plain)}
  for fn in fns.values():  # warm-up: tracing
    fn()
  for _ in range(repeats):
    for k, fn in fns.items():
      per_step[k].append(fn())
  return {k: benchlib.median(v) for k, v in per_step.items()}


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--steps', type=int, default=600)
  p.add_argument('--repeats', type=int, default=5)
  p.add_argument('--idx_dir', default='/usr/share/datasets/fashion-mnist')
  p.add_argument('--doc', default=os.path.join(REPO, 'docs', 'benchmarks.md'))
  p.add_argument('--no_doc', action='store_true')
  args = p.parse_args()
  data = load_data(args.idx_dir)
  lines = ['| model | loop steps/s | fit(wrapped) steps/s | fit(plain) steps/s '
           '| loop / fit(wrapped) time | loop / fit(plain) time |',
           '|---|---|---|---|---|---|']
  for name in ('lenet_300_100', 'lenet5'):
    t = bench(name, data, args.steps, args.repeats)
    lines.append(
        f'| {name} | {1 / t["loop"]:.0f} | {1 / t["fit(wrapped)"]:.0f} | '
        f'{1 / t["fit(plain)"]:.0f} | {t["loop"] / t["fit(wrapped)"]:.3f} | '
        f'{t["loop"] / t["fit(plain)"]:.3f} |')
    print(lines[-1], flush=True)
  cmd = f'python tools/bench_loop.py --steps {args.steps} --repeats {args.repeats}'
  body = (f'Training steps per second on Fashion-MNIST (batch '
          f'{data.batch_size}, Adam), median of {args.repeats} interleaved '
          f'repeats, steps {WARMUP}..{args.steps} timed.\n\nCommand: `{cmd}`'
          '\n\n' + '\n'.join(lines) + '\n')
  print(body)
  if not args.no_doc:
    benchlib.update_section(args.doc, 'loop', body)


if __name__ == '__main__':
  main()
