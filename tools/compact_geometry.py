"""Speed of compact networks by geometry alone: a zoo network pruned with
`lottery.structure` on its initial weights (no training: the widths a
structured ticket of that level has, not its accuracy), exported with
`--compact` for `tools/benchmark_tflite.py --export`.

    python tools/compact_geometry.py --model conv4 --levels 2 4 6 \\
        --out /tmp/conv4_geometry
    python tools/benchmark_tflite.py --export /tmp/conv4_geometry/level_4

Fashion-MNIST shapes (28x28x1, 10 classes) from the test fixture; hidden
layers lose `--fraction` per level, the output layer half that, as the LTH
protocols.
"""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import tf_tickets as tt  # noqa: E402  (tf_keras before TensorFlow)

from tf_tickets import data as data_lib  # noqa: E402
from tf_tickets import models  # noqa: E402
from tf_tickets import pruning  # noqa: E402

FIXTURE = os.path.join(REPO, 'tests', 'data', 'fashion_mnist_small')


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', default='conv4')
  parser.add_argument('--structure', default='refill',
                      choices=('unit', 'refill'))
  parser.add_argument('--levels', type=int, nargs='+', default=[2, 4, 6])
  parser.add_argument('--fraction', type=float, default=0.2)
  parser.add_argument('--out', required=True)
  args = parser.parse_args(argv)
  data = data_lib.load_dataset('fashion_mnist', idx_dir=FIXTURE,
                               validation_examples=500)
  model = tt.wrap(models.build_for(data, name=args.model))
  x, y = data.x_test[:200], data.y_test[:200]
  level = 0
  for target in sorted(args.levels):
    while level < target:
      pruning.prune(model, args.fraction,
                    fractions={'output': args.fraction / 2},
                    structure=args.structure)
      level += 1
    tt.export.export_model(
        model, os.path.join(args.out, f'level_{level}'), (x, y),
        calibration=data.x_train[:200], quantize=('int8',),
        formats=('saved_model', 'tflite', 'compact'), quiet=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
