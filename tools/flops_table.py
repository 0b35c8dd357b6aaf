"""FLOPs of LeNet-300-100 sparse training at 90/95/98% ERK (RigL paper
accounting, Appendix H), as tf_tickets reports them in results.csv.

  python tools/flops_table.py [--write docs/benchmarks.md]

Static/SET/SNIP/RigL train at the final masks' FLOPs (f_S); RigL adds a
dense gradient every ΔT = 100 steps; GMP (the gmp.* defaults) is
dense until pruning begins. No training is needed: the masks are drawn with
the ERK sparsities and the algorithms' own `training_flops` are evaluated.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tf_tickets as tt  # noqa: E402
from tf_tickets import algorithms  # noqa: E402
from tf_tickets import flops  # noqa: E402
from tf_tickets import models  # noqa: E402
from tools import benchlib  # noqa: E402

TOTAL = 50000  # training steps of the LTH / lenet_rigl.gin protocol


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--write', default=None)
  args = parser.parse_args()
  lines = ['## FLOPs of sparse LeNet-300-100 (RigL paper accounting)', '',
           'Fractions of the dense network (inference: 532,400 FLOPs per '
           'example; training: 3x that), ERK, 50,000 steps, ΔT = 100, '
           'T_end = 0.75; GMP with the `gmp.*` defaults (tfmot polynomial '
           'schedule from 1/8 to 3/4 of training, every 100 steps):', '',
           '| sparsity | inference | static / SET / SNIP training | RigL '
           'training | GMP training |', '|---|---|---|---|---|']
  for s in (0.9, 0.95, 0.98):
    model = tt.wrap(models.build_model(input_shape=(28, 28, 1),
                                       num_classes=10))
    cfg = algorithms.SparseTrainingSettings(sparsity=s)
    sparsities = tt.pruning.target_sparsities(model, cfg)
    tt.init_masks(model, sparsities, seed=0)
    sparse, dense = flops.by_key(model), flops.by_key(model, dense=True)
    f_d = 3 * sum(dense.values())
    run = algorithms.RunSteps(TOTAL, 916)
    rigl = algorithms.RigL(cfg, sparsities, 0, run)
    gmp = algorithms.GMP(algorithms.SparseTrainingSettings(
        method='gmp', sparsity=s), sparsities, 0, run,
                         gmp=algorithms.GMPSettings())
    lines.append(
        f'| {s:.0%} | {sum(sparse.values()) / sum(dense.values()):.4f} | '
        f'{3 * sum(sparse.values()) / f_d:.4f} | '
        f'{rigl.training_flops(sparse, dense) / f_d:.4f} | '
        f'{gmp.training_flops(sparse, dense) / f_d:.4f} |')
  lines += ['', 'RigL paper (Evci et al. 2020, Appendix H) uses the same '
            'definitions: static/SET train at f_S, RigL at (3 f_S ΔT + '
            '2 f_S + f_D) / (ΔT + 1) per example and step, pruning methods '
            'at the FLOPs of the current sparsity. Only prunable layers '
            'count (biases and activations are left out).', '',
            'Command: `python tools/flops_table.py`']
  benchlib.publish(lines, args.write, 'flops')


if __name__ == '__main__':
  main()
