"""Step-time cost of the prune-wrapper: dense vs tf_tickets vs tfmot.

Trains the same model three ways in ONE process, interleaved round-robin so
a busy machine slows all alike, with the same `model.fit` mechanics, data
and optimizer (Adam):

* dense: the plain tf_keras model;
* tf_tickets: `tf_tickets.wrap(model)` with 90% of the weights masked;
* tfmot: `prune_low_magnitude(model, ConstantSparsity(0.9))` with its
  `UpdatePruningStep` callback (what tfmot needs to train).

Prints the median step time of each and the ratios, for LeNet-300-100
(batch 60) and a small conv net (LeNet-5, batch 60), and writes the table to
docs/benchmarks.md (section "overhead").

    python tools/bench_overhead.py --steps 300 --repeats 7
"""

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# pylint: disable=g-import-not-at-top,wrong-import-position
import tf_tickets as tt
from tf_tickets import keras
from tf_tickets import models
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
from tools import benchlib


def make_data(shape, n=6000, batch=60, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 256, size=(n,) + shape).astype('float32')
  y = rng.integers(0, 10, size=n).astype('int32')
  return tf.data.Dataset.from_tensor_slices((x, y)).batch(
      batch, drop_remainder=True).repeat().prefetch(8)


def variants(name, shape):
  loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  build = lambda: models.build_model(name, input_shape=shape, num_classes=10,
                                     seed=0)
  dense = build()
  dense.compile(keras.optimizers.Adam(1e-3), loss)
  ours = tt.wrap(build())
  tt.init_masks(ours, 'uniform', seed=0, sparsity=0.9)
  ours.compile(keras.optimizers.Adam(1e-3), loss)
  schedule = tfmot.sparsity.keras.ConstantSparsity(0.9, begin_step=0,
                                                   frequency=100)
  # tfmot refuses the Normalization layer, so wrap the prunable layers only
  # (the pattern tfmot's guide shows for partial pruning).
  theirs = keras.models.clone_model(
      build(), clone_function=lambda layer: (
          tfmot.sparsity.keras.prune_low_magnitude(
              layer, pruning_schedule=schedule)
          if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))
          else layer.__class__.from_config(layer.get_config())))
  theirs.compile(keras.optimizers.Adam(1e-3), loss)
  return {'dense': (dense, []), 'tf_tickets': (ours, []),
          'tfmot': (theirs, [tfmot.sparsity.keras.UpdatePruningStep()])}


def bench(name, shape, steps, repeats):
  ds = make_data(shape)
  runs = {}
  for key, (model, callbacks) in variants(name, shape).items():
    runs[key] = (lambda m=model, c=callbacks: m.fit(
        ds, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=c))
  times = benchlib.interleaved(runs, repeats)
  per_step = {k: benchlib.median(v) / steps for k, v in times.items()}
  return per_step


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--steps', type=int, default=300)
  p.add_argument('--repeats', type=int, default=7)
  p.add_argument('--doc', default=os.path.join(REPO, 'docs', 'benchmarks.md'))
  p.add_argument('--no_doc', action='store_true')
  args = p.parse_args()
  lines = ['| model | dense ms/step | tf_tickets ms/step | tfmot ms/step | '
           'tf_tickets / dense | tfmot / dense | tf_tickets / tfmot |',
           '|---|---|---|---|---|---|---|']
  for name, shape in (('lenet_300_100', (28, 28, 1)), ('lenet5', (28, 28, 1))):
    t = bench(name, shape, args.steps, args.repeats)
    lines.append(
        f'| {name} | {1e3 * t["dense"]:.3f} | {1e3 * t["tf_tickets"]:.3f} | '
        f'{1e3 * t["tfmot"]:.3f} | {t["tf_tickets"] / t["dense"]:.3f} | '
        f'{t["tfmot"] / t["dense"]:.3f} | {t["tf_tickets"] / t["tfmot"]:.3f} |')
    print(lines[-1], flush=True)
  cmd = (f'python tools/bench_overhead.py --steps {args.steps} '
         f'--repeats {args.repeats}')
  body = (f'Median time per training step (model.fit, Adam, batch 60, 90% of '
          f'the weights masked in both sparse variants), {args.repeats} '
          f'interleaved repeats of {args.steps} steps in one process.\n\n'
          f'Command: `{cmd}`\n\n' + '\n'.join(lines) + '\n')
  print(body)
  if not args.no_doc:
    benchlib.update_section(args.doc, 'overhead', body)


if __name__ == '__main__':
  main()
