"""Sparse-training benchmark: LeNet-300-100 on Fashion-MNIST, offline.

The accuracy of the methods (paired seeds, CIs, two protocols, 1x and 5x
budgets) is tools/reproduce_sparse.py; this tool measures their cost.

The cost: RigL's training step time against static sparse training of the
    same model (ERK 90%), both with the real loop (`training.Trainer`), in
    ONE process, interleaved repetitions (the arm order alternates), at
    dT = 100 with updates during the whole timed window (T_end = end of
    training, the worst case; with the default T_end = 3/4 the overhead is
    a quarter lower). Timed: from the step after the first mask update
    (so every tf.function is traced) for a whole number of update
    intervals. The time spent inside RigL's mask updates is also measured
    directly. Target: ratio <= 1.15.

Full run (about a minute on 2 CPU cores):

  python tools/bench_sparse.py --part cost --out docs/benchmarks.md

Smoke run (a minute, on the small test fixture):

  python tools/bench_sparse.py --quick --out /tmp/bench_sparse.md
"""
import argparse
import logging as std_logging
import os
import shutil
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import tf_tickets  # noqa: E402,F401  (tf_keras before TensorFlow)
from absl import logging  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_tickets import data as data_lib  # noqa: E402
from tf_tickets import models  # noqa: E402
from tf_tickets import algorithms  # noqa: E402
from tf_tickets.experiments import sparse as sparse_exp  # noqa: E402
from tf_tickets import training  # noqa: E402
from tf_tickets import wrapper as wrapper_lib  # noqa: E402
from tf_tickets.keras import keras  # noqa: E402
from tools import benchlib  # noqa: E402

FIXTURE = os.path.join(REPO, 'tests', 'data', 'fashion_mnist_small')
FMNIST = '/usr/share/datasets/fashion-mnist'


# ------------------------------------------------------------------------------
# (b) cost
# ------------------------------------------------------------------------------


class StepClock(training.Hook):
  """Wall and process-CPU time of the steps (start, start + n] (placed
  after the method's hook, so the mask updates are included)."""

  def __init__(self, start, n):
    self.start, self.n = start, n
    self.t0 = self.t1 = None

  def next_event(self, step):
    """Only its two steps: the loop runs the chunks that real runs do."""
    if step < self.start:
      return self.start
    return self.start + self.n if step < self.start + self.n else sys.maxsize

  def after_step(self, trainer, step, grads):
    if step == self.start:
      self.t0 = (time.perf_counter(), time.process_time())
    elif step == self.start + self.n:
      self.t1 = (time.perf_counter(), time.process_time())

  @property
  def per_step(self):
    """(wall seconds, CPU seconds) per step."""
    return tuple((b - a) / self.n for a, b in zip(self.t0, self.t1))


class HookClock(training.Hook):
  """Adds up the time spent in the hooks between `begin_mark` and itself,
  over the steps (first, first + n]."""

  class Mark(training.Hook):
    t = None

    def next_event(self, step):
      return sys.maxsize  # listens at the boundaries the others place

    def after_step(self, trainer, step, grads):
      self.t = time.perf_counter()

  def __init__(self, first, n):
    self.first, self.n, self.seconds = first, n, 0.0
    self.begin_mark = self.Mark()

  def next_event(self, step):
    return sys.maxsize

  def after_step(self, trainer, step, grads):
    if self.first < step <= self.first + self.n:
      self.seconds += time.perf_counter() - self.begin_mark.t


def cost_once(data, method, args, tmp):
  """Per-step seconds of one fresh run of `method`, and its update time."""
  strategy = tf.distribute.get_strategy()
  keras.backend.clear_session()
  model = wrapper_lib.wrap(models.build_model(
      input_shape=data.input_shape, num_classes=data.num_classes,
      mean=data.mean, std=data.std, seed=0))
  cfg = algorithms.SparseTrainingSettings(
      method=method, sparsity=0.9, distribution='erk', update_every=100,
      end_step=1.0)
  algorithm = sparse_exp.make_algorithm(model, cfg, 0)
  sparse_exp.initialize_masks(model, algorithm)
  first = 101  # after the first update (step 100): all functions traced
  n = args.cost_steps
  steps = first + n + 1
  config = training.TrainingConfig(steps=steps, eval_every=steps,
                                   checkpoint_every=steps, log_every=steps)
  in_hook = HookClock(first, n)
  clock = StepClock(first, n)
  net_dir = tempfile.mkdtemp(dir=tmp)
  trainer = training.Trainer(
      model, data, config, strategy, net_dir, quiet=True,
      hooks=[in_hook.begin_mark, training.MaskHook(algorithm), in_hook, clock])
  trainer.fit()
  shutil.rmtree(net_dir, ignore_errors=True)
  return clock.per_step, in_hook.seconds / n


def cost_table(args):
  data = data_lib.load_dataset('fashion_mnist', idx_dir=args.idx_dir,
                               validation_examples=args.validation or 0)
  tmp = tempfile.mkdtemp(prefix='bench_sparse_cost-')
  wall = {'rigl': [], 'static': []}
  cpu = {'rigl': [], 'static': []}
  update = []
  try:
    for r in range(args.reps):
      order = ('rigl', 'static') if r % 2 == 0 else ('static', 'rigl')
      for method in order:
        (w, c), upd = cost_once(data, method, args, tmp)
        wall[method].append(w)
        cpu[method].append(c)
        if method == 'rigl':
          update.append(upd)
        print(f'  rep {r + 1} {method}: {1e3 * w:.3f} ms/step wall, '
              f'{1e3 * c:.3f} ms/step CPU', flush=True)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  med = statistics.median
  # Each repetition's two arms ran back to back: their ratio is the least
  # sensitive to load from other processes; report the median of ratios.
  ratio = med([a / b for a, b in zip(wall['rigl'], wall['static'])])
  cpu_ratio = med([a / b for a, b in zip(cpu['rigl'], cpu['static'])])
  upd = med(update)
  static = med(wall['static'])
  ms = lambda v: f'{1e3 * v:.3f}'
  text = '\n'.join([
      f'RigL vs static sparse training, LeNet-300-100 ERK 90%, batch 60, '
      f'dT = 100, mask updates throughout the timed window '
      f'({args.cost_steps} steps = {args.cost_steps // 100} updates per '
      f'repetition), {args.reps} interleaved repetitions in one process:', '',
      '| arm | wall ms/step (median) | wall (min) | CPU ms/step (median) |',
      '|---|---|---|---|',
      *(f'| {m} | {ms(med(wall[m]))} | {ms(min(wall[m]))} | '
        f'{ms(med(cpu[m]))} |' for m in ('static', 'rigl')),
      f'| rigl: in mask updates (amortised) | {ms(upd)} | | |', '',
      f'Ratio rigl / static (median over repetitions of the per-repetition '
      f'ratio): **{ratio:.3f}x** wall, {cpu_ratio:.3f}x CPU (target <= '
      f'1.15x: {"met" if ratio <= 1.15 else "NOT met"}). The mask updates '
      f'alone cost {upd / static:.1%} of a static step; the rest of any '
      'difference is the dense-gradient step on update steps.'])
  return text, ratio


# ------------------------------------------------------------------------------


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('--quick', action='store_true',
                 help='smoke run on the test fixture (about a minute)')
  p.add_argument('--out', help='markdown file to write the results into '
                 '(its "sparse_training" section is replaced)')
  p.add_argument('--part', choices=('cost',), default='cost',
                 help='what to measure (the accuracy is '
                 'tools/reproduce_sparse.py)')
  p.add_argument('--idx_dir', default=None,
                 help=f'Fashion-MNIST IDX files (default {FMNIST})')
  p.add_argument('--reps', type=int, default=None,
                 help='repetitions of (b) per arm (default 5)')
  p.add_argument('--cost_steps', type=int, default=None,
                 help='timed steps per repetition of (b) (default 1000)')
  args = p.parse_args(argv)
  quick = args.quick
  args.idx_dir = args.idx_dir or (FIXTURE if quick else FMNIST)
  args.reps = args.reps or (2 if quick else 5)
  args.cost_steps = args.cost_steps or (200 if quick else 1000)
  args.validation = 500 if quick else None  # None: the gin files' 5000
  return args


def main(argv=None):
  args = parse_args(argv)
  logging.set_verbosity(logging.WARNING)
  # gin tries its '' search prefix first and logs a harmless error for
  # `include`d files that it then finds in gin/.
  std_logging.getLogger().addFilter(
      lambda record: 'Path not found' not in record.getMessage())
  tf.get_logger().setLevel('ERROR')
  command = 'python tools/bench_sparse.py ' + ' '.join(sys.argv[1:])
  t0 = time.time()
  text, _ = cost_table(args)
  print(text, flush=True)
  sections = [f'## Sparse training (RigL / SET / static / GMP)\n\n'
              f'Command: `{command.strip()}`', '### Cost\n\n' + text,
              f'Wall time: {(time.time() - t0) / 60:.1f} min.']
  if args.out:
    benchlib.update_section(args.out, 'sparse_training_cost',
                            '\n\n'.join(sections))
    print(f'written to {args.out}')


if __name__ == '__main__':
  main()
