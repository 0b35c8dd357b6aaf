"""What do block tickets cost? Element vs (16, 1)-block IMP on LeNet-300-100.

For each seed, four runs through the real entrypoint (gin/lenet_imp.gin on
Fashion-MNIST from IDX files): element-wise IMP, block IMP
(`lottery.block_size = (16, 1)`), and the random_reinit control of each.
Within a seed every arm starts from the same theta_0 and data order.

Decision rule (fixed before the runs): at each reported level, a paired
difference (over seeds) is "shown" when its 95% confidence interval (t
distribution) excludes 0, else "not shown". Claims tested: (1) block
tickets lose accuracy against element tickets at the same level (the
densities agree to within the block rounding); (2) a block ticket beats its
random_reinit control; (3) RigL with blocks loses accuracy against RigL
with element masks at the same ERK 90% budget. The early-stop test accuracy (at the step of lowest
validation loss) is the measure.

    python tools/block_tickets.py --seeds 0 1 2 --levels 11 --steps 3000 \
        --write docs/benchmarks.md
"""
import argparse
import csv
import os
import statistics
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tools import benchlib  # pylint: disable=g-import-not-at-top,wrong-import-position
from tf_tickets import rundir  # pylint: disable=g-import-not-at-top,wrong-import-position

def rows(path):
  with open(path) as f:
    return {int(r['level']): r for r in csv.DictReader(f)}


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
  p.add_argument('--levels', type=int, default=11)
  p.add_argument('--steps', type=int, default=3000)
  p.add_argument('--rigl_steps', type=int, default=6000)
  p.add_argument('--report_levels', type=int, nargs='+', default=[3, 7, 11])
  p.add_argument('--idx_dir', default='/usr/share/datasets/fashion-mnist')
  p.add_argument('--runs', default=os.path.join(REPO, 'runs', 'blocks'))
  p.add_argument('--write', default=None, help='benchmarks.md to update')
  args = p.parse_args()
  if len(args.seeds) < 2:
    p.error('--seeds: give at least 2 (the paired CIs need them)')
  os.makedirs(args.runs, exist_ok=True)
  log = os.path.join(args.runs, 'log.txt')
  base = ["dataset.name = 'fashion_mnist'", f"dataset.idx_dir = '{args.idx_dir}'",
          f'lottery.levels = {args.levels}', f'training.steps = {args.steps}',
          "training.eval_every = '100it'",
          f'training.checkpoint_every = {args.steps}']
  arms = {'element': [], 'block': ['lottery.block_size = (16, 1)']}
  acc = {}  # (arm, branch, seed) -> {level: row}
  for seed in args.seeds:
    for arm, extra in arms.items():
      out = os.path.join(args.runs, f'{arm}_seed{seed}')
      params = base + extra + [f'training.seed = {seed}']
      benchlib.run_train('lenet_imp.gin', params, out, log)
      acc[(arm, 'ticket', seed)] = rows(rundir.results_path(out))
      benchlib.run_train('lenet_imp.gin',
                         params + ["lottery.branch = 'random_reinit'"], out,
                         log)
      acc[(arm, 'reinit', seed)] = rows(rundir.results_path(
          out, 'random_reinit'))

  def measure(arm, branch, seed, level):
    return 100 * float(acc[(arm, branch, seed)][level][
        'early_stop_test_accuracy'])

  lines = [f'LeNet-300-100, Fashion-MNIST, {args.steps} iterations per level '
           f'(Adam 1.2e-3, batch 60, evaluation every 100), seeds '
           f'{args.seeds}; early-stop test accuracy (%), mean ± std; paired '
           'differences with 95% CI (t).', '',
           '| level | % weights (element / block) | element ticket | block '
           'ticket | block − element | block reinit | block ticket − reinit '
           '| element ticket − reinit |', '|---|---|---|---|---|---|---|---|']
  verdicts = []
  for level in args.report_levels:
    s = args.seeds
    dens = [100 * float(acc[(a, 'ticket', s[0])][level]['density'])
            for a in arms]
    el = [measure('element', 'ticket', x, level) for x in s]
    bl = [measure('block', 'ticket', x, level) for x in s]
    br = [measure('block', 'reinit', x, level) for x in s]
    er = [measure('element', 'reinit', x, level) for x in s]
    cells = []
    for diffs in ([b - e for b, e in zip(bl, el)],
                  [b - r for b, r in zip(bl, br)],
                  [e - r for e, r in zip(el, er)]):
      m, h = benchlib.ci(diffs)
      cells.append(f'{m:+.2f} [{m - h:+.2f}, {m + h:+.2f}]')
    lines.append(
        f'| {level} | {dens[0]:.1f} / {dens[1]:.1f} | '
        f'{statistics.mean(el):.2f} ± {statistics.stdev(el):.2f} | '
        f'{statistics.mean(bl):.2f} ± {statistics.stdev(bl):.2f} | {cells[0]} '
        f'| {statistics.mean(br):.2f} ± {statistics.stdev(br):.2f} | '
        f'{cells[1]} | {cells[2]} |')
    cost, h = benchlib.ci([b - e for b, e in zip(bl, el)])
    win, h2 = benchlib.ci([b - r for b, r in zip(bl, br)])
    verdicts.append(
        f'- Level {level} ({dens[1]:.1f}% of the weights): block tickets '
        + ('lose accuracy against element tickets (shown)'
           if cost + h < 0 else 'gain accuracy (shown)' if cost - h > 0
           else 'vs element tickets: no difference shown')
        + f' ({cost:+.2f} points); block ticket vs its random_reinit: '
        + ('better (shown)' if win - h2 > 0 else 'worse (shown)'
           if win + h2 < 0 else 'not shown') + f' ({win:+.2f} points).')
  # RigL (gin/lenet_rigl.gin: ERK 90%, dT 100) with element vs block masks.
  rigl = {arm: [] for arm in arms}
  for seed in args.seeds:
    for arm, extra in arms.items():
      out = os.path.join(args.runs, f'rigl_{arm}_seed{seed}')
      benchlib.run_train(
          'lenet_rigl.gin', base[:2] + [f'training.steps = {args.rigl_steps}',
                                        f'training.seed = {seed}'] +
          [e.replace('lottery', 'sparse_training') for e in extra], out, log)
      rigl[arm].append(100 * float(rows(rundir.results_path(out))[0][
          'early_stop_test_accuracy']))
  m, h = benchlib.ci([b - e for b, e in zip(rigl['block'], rigl['element'])])
  lines += ['', f'RigL, ERK 90% (gin/lenet_rigl.gin), {args.rigl_steps} '
            'iterations, same seeds: element masks '
            f'{statistics.mean(rigl["element"]):.2f} ± '
            f'{statistics.stdev(rigl["element"]):.2f}, (16, 1) blocks '
            f'{statistics.mean(rigl["block"]):.2f} ± '
            f'{statistics.stdev(rigl["block"]):.2f}; block − element '
            f'{m:+.2f} [{m - h:+.2f}, {m + h:+.2f}]: '
            + ('blocks lose accuracy (shown).' if m + h < 0 else
               'blocks gain accuracy (shown).' if m - h > 0 else
               'no difference shown.')]
  command = ('python tools/block_tickets.py --seeds '
             + ' '.join(map(str, args.seeds)) + f' --levels {args.levels} '
             f'--steps {args.steps} --rigl_steps {args.rigl_steps}')
  lines += [''] + verdicts + ['', f'    {command}']
  print('\n'.join(lines))
  if args.write:
    benchlib.update_section(args.write, 'block_tickets', '\n'.join(lines))


if __name__ == '__main__':
  main()
