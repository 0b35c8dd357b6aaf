"""The LTH experiment on LeNet-300-100 / Fashion-MNIST, with paired evidence.

The lottery part (rules 1-3) is also a sweep + compare configuration, the
way to reproduce it now (README "Sweeps and paired comparisons"):
`python -m tf_tickets.sweep --gin_file=gin/lenet_imp.gin ...` then
`python -m tf_tickets.compare` with `docs/results/lth.rules.json` (rules
1-2) and `docs/results/lth_early_stop.rules.json` (rule 3). This script
stays for the instability analysis (--stability, rules 4-5): a claim about
one arm against a fixed threshold, which compare's paired comparisons do
not express.

For each seed, through the real entrypoint (gin/lenet_imp.gin: Adam 1.2e-3,
batch 60, 20% per level on the hidden layers, 10% on the output layer,
rewind to theta_0, 5,000 validation examples, evaluation every 100
iterations): IMP levels 0..--levels, then the random_reinit and
random_prune control branches at --control_levels only
(`lottery.branch_levels`). Fashion-MNIST is read offline from IDX files.
Within a seed every arm has the same theta_0 and data order; random_reinit
draws a new initialisation and random_prune a random mask of the level's
per-layer densities (the paper's controls).

The measure is the test accuracy at the early-stop step (the step of
minimum validation loss; the paper's Figures 3-4); the early-stop step is
the paper's speed measure. Nothing is tuned on the test set.

Decision rules (fixed before the runs; reported whatever the outcome), on
the per-seed paired differences, mean and 95% t confidence interval:
 1. "Tickets match dense": at level L the claim holds when the CI of
    (ticket - dense) lies above -0.5 points (a non-inferiority margin). The
    verdict names the sparsest level down to which it holds at every level.
 2. "Tickets beat their controls at <= 21% of the weights": at each control
    level of density <= 21%, shown when the CI of (ticket - control) lies
    above 0, for each control separately; one verdict per level, no count
    of wins over levels (the levels are nested and correlated).
 3. "Tickets stop early sooner than dense at ~21-50%": at each level of
    density 20-52%, shown when the CI of (ticket early-stop step - dense
    early-stop step) lies below 0.
A dense early-stop step within the last 10% of the budget is flagged: the
budget may then be too short for claim 3.

--stability adds the instability analysis (gin/lenet_stability.gin: two
copies from theta_k with data-order seeds 1 and 2, trained to the end, test
error on 30 networks of the straight line between them) of the dense
network and of the level --stability_level masks of each seed's lottery run
(at k = 0 the ticket itself), at the rewind steps --rewind_steps, with the
same training protocol and budget. The measure is the error barrier (max
error on the path minus the mean of the endpoints, in points). Rules:
 4. "Stable at k" (the paper's MNIST finding: LeNet is stable at
    initialisation, dense and IMP ticket alike): for each network and k,
    shown when the CI of the barrier lies below 2 points (our threshold of
    "stable"; the barrier is >= 0 by construction), "unstable" shown when
    it lies above 2 points, else not shown.
 5. Ticket vs dense at k: the paired difference of barriers, shown when its
    CI excludes 0 (descriptive: no direction is claimed in advance).

    python tools/reproduce_lth.py --seeds 0 1 2 3 4 --levels 15 \\
        --steps 25000 --write docs/benchmarks.md
    python tools/reproduce_lth.py --seeds 0 1 2 3 4 --levels 15 \\
        --steps 25000 --stability --write docs/benchmarks.md

Runs are resumable: rerunning the command trains only what is missing.
"""

import argparse
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tools import benchlib  # pylint: disable=g-import-not-at-top,wrong-import-position
from tf_tickets import rundir  # pylint: disable=g-import-not-at-top,wrong-import-position

CONTROLS = ('random_reinit', 'random_prune')
MARGIN = 0.5  # points: the non-inferiority margin of claim 1


def by_level(path):
  return {int(r['level']): r for r in rundir.read_results(path)}


def pm(values, digits=2):
  s = statistics.stdev(values) if len(values) > 1 else 0.0
  return f'{statistics.mean(values):.{digits}f} ± {s:.{digits}f}'


def acc(row):
  return 100.0 * float(row['early_stop_test_accuracy'])


def step(row):
  return int(row['early_stop_step'])


def train_minutes(res):
  return sum(float(r['wall_time']) for rows in res.values()
             for r in rows.values()) / 60.0


def report(res, seeds, levels, controls, steps):
  """The table and verdicts of `res[(arm, seed)] = {level: row}`."""
  dense = {s: res[('lottery', s)][0] for s in seeds}
  head = ('| level | % weights | ticket acc | ticket − dense | ticket '
          'early-stop step | ticket − dense, steps | random_reinit acc | '
          'ticket − reinit | random_prune acc | ticket − prune |')
  lines = [head, '|' + '---|' * 10]
  verdicts, matched, failed_at = [], None, None
  for level in range(levels + 1):
    rows = [res[('lottery', s)][level] for s in seeds]
    density = 100 * statistics.mean(float(r['density']) for r in rows)
    t_acc = [acc(r) for r in rows]
    d_acc = [a - acc(dense[s]) for a, s in zip(t_acc, seeds)]
    t_step = [step(r) for r in rows]
    d_step = [x - step(dense[s]) for x, s in zip(t_step, seeds)]
    cells = [str(level), f'{density:.1f}', pm(t_acc),
             benchlib.fmt_ci(d_acc) if level else '',
             pm(t_step, 0), benchlib.fmt_ci(d_step, 0) if level else '']
    for name in CONTROLS:
      if level in controls:
        c_acc = [acc(res[(name, s)][level]) for s in seeds]
        diffs = [t - c for t, c in zip(t_acc, c_acc)]
        cells += [pm(c_acc), benchlib.fmt_ci(diffs)]
        if density <= 21.0:
          m, h = benchlib.ci(diffs)
          verdicts.append(
              f'- Claim 2, level {level} ({density:.1f}%), ticket vs {name}: '
              f'{m:+.2f} points [{m - h:+.2f}, {m + h:+.2f}]: ' +
              ('**shown** (the ticket is better).' if m - h > 0 else
               'the control is better (shown).' if m + h < 0 else
               '**not shown**.'))
      else:
        cells += ['', '']
    lines.append('| ' + ' | '.join(cells) + ' |')
    if level:
      m, h = benchlib.ci(d_acc)
      if failed_at is None and m - h > -MARGIN:
        matched = (level, density)
      elif failed_at is None:
        failed_at = (level, density, m, h)
      if 20.0 <= density <= 52.0:
        m, h = benchlib.ci(d_step)
        verdicts.append(
            f'- Claim 3, level {level} ({density:.1f}%): ticket − dense '
            f'early-stop step {m:+.0f} [{m - h:+.0f}, {m + h:+.0f}]: ' +
            ('**shown** (tickets stop earlier).' if m + h < 0 else
             'tickets stop later (shown).' if m - h > 0 else
             '**not shown**.'))
  one = ('- Claim 1 (ticket ≥ dense − 0.5 points): ' +
         (f'shown at every level down to level {matched[0]} '
          f'({matched[1]:.1f}% of the weights)' if matched else
          'not shown at level 1'))
  if failed_at:
    lv, d, m, h = failed_at
    one += (f'; first level where it is not shown: {lv} ({d:.1f}%, '
            f'{m:+.2f} [{m - h:+.2f}, {m + h:+.2f}])')
  one += '.'
  late = [s for s in seeds if step(dense[s]) >= 0.9 * steps]
  flag = (f'- The dense early-stop step is within the last 10% of the budget '
          f'for seed(s) {late}: claim 3 may be an artefact of the budget.'
          if late else
          f'- Dense early-stop steps {[step(dense[s]) for s in seeds]} are '
          f'all before 90% of the {steps}-iteration budget.')
  return lines, [one] + verdicts + [flag]


STABLE = 2.0  # points: the barrier below which claim 4 calls a network stable


def stability_rows(path):
  return {int(r['k']): 100.0 * float(r['error_barrier'])
          for r in rundir.read_results(path)}


def stability_report(res, seeds, ks, level, density):
  """The table and verdicts of `res[(net, seed)] = {k: barrier (points)}`
  for net in ('dense', 'ticket')."""
  nets = (('dense', 'dense'),
          ('ticket', f'level-{level} ticket ({density:.1f}%)'))
  lines = ['| k (iterations) | dense: barrier | ticket: barrier | '
           'ticket − dense |', '|---|---|---|---|']
  verdicts = []
  for k in ks:
    b = {net: [res[(net, s)][k] for s in seeds] for net, _ in nets}
    diffs = [t - d for t, d in zip(b['ticket'], b['dense'])]
    lines.append(f'| {k} | {benchlib.fmt_ci(b["dense"])} | '
                 f'{benchlib.fmt_ci(b["ticket"])} | {benchlib.fmt_ci(diffs)} |')
    for net, name in nets:
      m, h = benchlib.ci(b[net])
      verdicts.append(
          f'- Claim 4, {name}, k = {k}: barrier {m:.2f} [{m - h:+.2f}, '
          f'{m + h:+.2f}] points: ' +
          (f'**stable (shown)** (CI below {STABLE:g}).' if m + h < STABLE
           else f'**unstable (shown)** (CI above {STABLE:g}).'
           if m - h > STABLE else '**not shown**.'))
    m, h = benchlib.ci(diffs)
    verdicts.append(
        f'- Claim 5, k = {k}: ticket − dense barrier {m:+.2f} '
        f'[{m - h:+.2f}, {m + h:+.2f}]: ' +
        ('the ticket is less stable (shown).' if m - h > 0 else
         'the ticket is more stable (shown).' if m + h < 0 else
         '**not shown**.'))
  return lines, verdicts


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
  p.add_argument('--levels', type=int, default=15)
  p.add_argument('--control_levels', type=int, nargs='+',
                 default=[3, 6, 9, 12, 15])
  p.add_argument('--steps', type=int, default=25000)
  p.add_argument('--idx_dir', default='/usr/share/datasets/fashion-mnist')
  p.add_argument('--runs', default=None, help='run directories (default '
                 'runs/lth_evidence; with --quick runs/lth_quick)')
  p.add_argument('--write', default=None, help='benchmarks.md to update')
  p.add_argument('--stability', action='store_true',
                 help='also the instability analysis (rules 4-5)')
  p.add_argument('--stability_level', type=int, default=5)
  p.add_argument('--rewind_steps', type=int, nargs='+',
                 default=[0, 100, 500, 2000])
  p.add_argument('--quick', action='store_true', help='smoke run: the test '
                 'fixture, 2 seeds, 3 levels of 40 iterations')
  args = p.parse_args()
  if args.runs is None:  # a smoke run never mixes with the real runs
    args.runs = os.path.join(REPO, 'runs', 'lth_quick' if args.quick
                             else 'lth_evidence')
  if args.quick:
    args.idx_dir = os.path.join(REPO, 'tests', 'data', 'fashion_mnist_small')
    args.seeds, args.levels, args.steps = args.seeds[:2], 3, 40
    args.control_levels, args.rewind_steps = [3], [0, 10]
    args.stability_level = min(args.stability_level, args.levels)
  if len(args.seeds) < 2:
    p.error('--seeds: give at least 2 (the paired CIs need them)')
  bad = [lv for lv in args.control_levels if not 1 <= lv <= args.levels]
  if bad:
    p.error(f'--control_levels: {bad} not in 1..--levels ({args.levels})')
  if args.stability and not 1 <= args.stability_level <= args.levels:
    p.error(f'--stability_level {args.stability_level}: not in 1..--levels '
            f'({args.levels})')
  if args.stability and not all(0 <= k < args.steps
                                for k in args.rewind_steps):
    p.error(f'--rewind_steps {args.rewind_steps}: each must be in '
            f'0..--steps - 1 ({args.steps - 1})')
  if not os.path.isdir(args.idx_dir):
    p.error(f'--idx_dir {args.idx_dir} does not exist (apt-get install '
            'dataset-fashion-mnist)')
  os.makedirs(args.runs, exist_ok=True)
  log = os.path.join(args.runs, 'log.txt')
  common = ["dataset.name = 'fashion_mnist'",
            f"dataset.idx_dir = '{args.idx_dir}'",
            f'training.steps = {args.steps}',
            f'training.checkpoint_every = {args.steps}',
            f'lottery.levels = {args.levels}',
            f'lottery.branch_levels = {tuple(args.control_levels)}']
  if args.quick:
    common.append('dataset.validation_examples = 500')
  res = {}
  t0 = time.time()
  for seed in args.seeds:
    out = os.path.join(args.runs, f'seed{seed}')
    params = common + [f'training.seed = {seed}']
    for arm in ('lottery',) + CONTROLS:
      extra = [] if arm == 'lottery' else [f"lottery.branch = '{arm}'"]
      print(f'[{time.time() - t0:7.0f}s] seed {seed}: {arm}', flush=True)
      benchlib.run_train('lenet_imp.gin', params + extra, out, log)
      res[(arm, seed)] = by_level(rundir.results_path(
          out, None if arm == 'lottery' else arm))
  lines, verdicts = report(res, args.seeds, args.levels,
                           set(args.control_levels), args.steps)
  cmd = ('python tools/reproduce_lth.py --seeds ' +
         ' '.join(map(str, args.seeds)) + f' --levels {args.levels} '
         f'--steps {args.steps} --control_levels ' +
         ' '.join(map(str, args.control_levels)))
  body = [
      f'LeNet-300-100 on Fashion-MNIST (offline IDX files), IMP with rewind '
      f'to theta_0, 20% per level (output layer 10%), Adam 1.2e-3, batch 60, '
      f'5,000 validation examples, evaluation every 100 iterations, '
      f'**{args.steps} iterations per level** (the paper: 50,000 on MNIST), '
      f'seeds {args.seeds}, controls at levels {args.control_levels}. '
      'Accuracies (%) are test accuracies at the early-stop step (minimum '
      'validation loss), mean ± std over seeds; differences are paired by '
      'seed, mean [95% CI]. Decision rules: see `tools/reproduce_lth.py` '
      '(written before the runs).', ''] + lines + [''] + verdicts + [
          '', f'Training time of all networks: {train_minutes(res):.0f} min '
          '(the sum of their wall times; finished networks are not '
          'retrained).', '', f'    {cmd}']
  text = '\n'.join(body)
  print(text)
  if args.write:
    benchlib.update_section(args.write, 'lth', text)
  if args.stability:
    stability(args, common, res, log, t0)


def stability(args, common, res, log, t0):
  """Rules 4-5: the instability analysis of the dense network and of the
  level --stability_level ticket of each seed's lottery run."""
  level, ks = args.stability_level, sorted(set(args.rewind_steps))
  # Only the copies' final networks enter the path: no validation on the
  # way (the lottery runs' bindings otherwise, so the network checks pass).
  params = common + [f'stability.rewind_steps = {tuple(ks)}',
                     f'training.eval_every = {args.steps}']
  out = {}
  for seed in args.seeds:
    lottery_dir = os.path.join(args.runs, f'seed{seed}')
    for net in ('dense', 'ticket'):
      extra = [f'training.seed = {seed}']
      if net == 'ticket':
        extra += [f'stability.level = {level}',
                  f"stability.lottery_dir = '{lottery_dir}'"]
      d = os.path.join(args.runs, f'stability-{net}-seed{seed}')
      print(f'[{time.time() - t0:7.0f}s] seed {seed}: stability, {net}',
            flush=True)
      benchlib.run_train('lenet_stability.gin', params + extra, d, log)
      out[(net, seed)] = stability_rows(rundir.results_path(d))
  density = 100 * statistics.mean(
      float(res[('lottery', s)][level]['density']) for s in args.seeds)
  lines, verdicts = stability_report(out, args.seeds, ks, level, density)
  cmd = ('python tools/reproduce_lth.py --seeds ' +
         ' '.join(map(str, args.seeds)) + f' --levels {args.levels} '
         f'--steps {args.steps} --stability --stability_level {level} '
         '--rewind_steps ' + ' '.join(map(str, ks)))
  body = [
      f'Instability analysis of LeNet-300-100 on Fashion-MNIST, the '
      f'protocol of the LTH table above (**{args.steps} iterations**, seeds '
      f'{args.seeds}): for each seed and rewind step k, two copies trained '
      'from theta_k with data-order seeds 1 and 2 to the end; error barrier '
      '= max test error on 30 networks of the straight line between them '
      'minus the mean of the endpoints, in points, mean [95% CI] over seeds; '
      f'"ticket" is the level-{level} mask of the seed\'s lottery run '
      f'({density:.1f}% of the weights) applied to the dense theta_k (at '
      'k = 0 the ticket itself; at k > 0 that mask on a later iterate, not '
      'the ticket of an IMP run rewound to k). Decision rules 4-5: see '
      '`tools/reproduce_lth.py` (written before the runs).', ''] + lines + [
          ''] + verdicts + ['', f'    {cmd}']
  text = '\n'.join(body)
  print(text)
  if args.write:
    benchlib.update_section(args.write, 'lth_stability', text)


if __name__ == '__main__':
  main()
