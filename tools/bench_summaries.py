"""Step-time overhead of the sparsity summaries (`tf_tickets.summaries`).

Trains LeNet-300-100 with the real training loop (`training.Trainer`) with
and without `SummaryHook`, interleaved in one process (arm order rotates
every round), and prints the per-step time of each arm and its ratio to the
arm without summaries. Both arms have a summary writer (the loop's own
train/eval scalars); only the sparsity summaries differ. Timed: from the end
of a warm-up step to the last step, i.e. training steps plus every hook's
after_step (the summaries' interval writes); the start/end summaries are
one-off costs (they show in the fit time). Wall and process-CPU time are
both reported; on a shared machine the CPU figures and the time measured
inside the summaries' after_step (divided by the base step time) are the
more stable ones.

  python tools/bench_summaries.py \
      --idx_dir /usr/share/datasets/fashion-mnist --steps 3000 --rounds 3

The model is pruned to ~20% density first (masks as in a lottery level), so
histograms and images work on sparse masks.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tf_tickets  # noqa: E402,F401  (tf_keras before TensorFlow)
import gin  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_tickets import data as data_lib  # noqa: E402
from tf_tickets import models  # noqa: E402
from tf_tickets import algorithms  # noqa: E402
from tf_tickets import summaries  # noqa: E402
from tf_tickets import training  # noqa: E402
from tf_tickets import wrapper as wrapper_lib  # noqa: E402


class Timed(training.Hook):
  """Forwards to `hook`, adding up the wall and thread-CPU seconds spent in
  its after_step (the interval writes)."""

  def __init__(self, hook):
    self.hook, self.wall, self.cpu = hook, 0.0, 0.0

  def begin(self, trainer):
    self.hook.begin(trainer)

  def next_event(self, step):
    return self.hook.next_event(step)

  def after_step(self, trainer, step, grads):
    t, c = time.perf_counter(), time.thread_time()
    self.hook.after_step(trainer, step, grads)
    self.wall += time.perf_counter() - t
    self.cpu += time.thread_time() - c

  def on_mask_update(self, trainer, step, stats, totals=None):
    self.hook.on_mask_update(trainer, step, stats, totals)

  def end(self, trainer, result):
    self.hook.end(trainer, result)


class StepTimer(training.Hook):
  """Wall and process-CPU time from after step `warmup` to the last step."""

  def __init__(self, warmup):
    self.warmup, self.start, self.stop, self.steps = warmup, None, None, 0

  def next_event(self, step):
    """Only `warmup` (the end is a boundary anyway): the loop runs the
    chunks that real runs do."""
    return self.warmup if step < self.warmup else sys.maxsize

  def after_step(self, trainer, step, grads):
    if step == self.warmup:
      self.start = (time.perf_counter(), time.process_time())
    if step == trainer.schedule.steps:
      self.stop = (time.perf_counter(), time.process_time())
      self.steps = step - self.warmup


def run_arm(data, config, every, warmup, workdir):
  """Trains once; returns per-step seconds: wall, process CPU, and the
  summaries' after_step wall and thread CPU; and the total fit seconds."""
  model = models.build_model(input_shape=data.input_shape,
                             num_classes=data.num_classes, mean=data.mean,
                             std=data.std, seed=config.seed)
  model = wrapper_lib.wrap(model)
  algorithms.prune_by_magnitude(model, 0.8)
  net_dir = tempfile.mkdtemp(dir=workdir)
  writer = tf.summary.create_file_writer(net_dir)
  timer = StepTimer(warmup)
  hooks = [summaries.TrainingScalars()]  # the loop's curves, in every arm
  if every is not None:
    hooks.append(Timed(summaries.SummaryHook(every=every)))
  trainer = training.Trainer(model, data, config, tf.distribute.get_strategy(),
                             net_dir, hooks=hooks + [timer], writer=writer,
                             quiet=True)
  t = time.perf_counter()
  trainer.fit()
  total = time.perf_counter() - t
  writer.close()
  shutil.rmtree(net_dir)
  n, steps = timer.steps, trainer.schedule.steps
  return dict(
      wall=(timer.stop[0] - timer.start[0]) / n,
      cpu=(timer.stop[1] - timer.start[1]) / n,
      hook_wall=hooks[0].wall / steps if hooks else 0.0,
      hook_cpu=hooks[0].cpu / steps if hooks else 0.0,
      total=total)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--idx_dir', default='/usr/share/datasets/fashion-mnist')
  parser.add_argument('--steps', type=int, default=3000)
  parser.add_argument('--warmup', type=int, default=200)
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--every', default='1000,100',
                      help='comma-separated summaries.every values to test')
  args = parser.parse_args()
  gin.parse_config([
      "dataset.name = 'fashion_mnist'", f"dataset.idx_dir = '{args.idx_dir}'",
      'dataset.batch_size = 60', 'dataset.validation_examples = 5000'])
  data = data_lib.load_dataset()
  config = training.TrainingConfig(
      steps=args.steps, eval_every=args.steps, checkpoint_every=10**9,
      optimizer='adam', learning_rate=1.2e-3)
  arms = [None] + [int(e) for e in args.every.split(',')]
  names = {a: 'none' if a is None else f'every={a}' for a in arms}
  runs = {a: [] for a in arms}
  workdir = tempfile.mkdtemp(prefix='bench_summaries-')
  print(f'load average before: {os.getloadavg()[0]:.2f}', flush=True)
  try:
    for r in range(args.rounds):
      order = arms[r % len(arms):] + arms[:r % len(arms)]
      for arm in order:
        m = run_arm(data, config, arm, args.warmup, workdir)
        runs[arm].append(m)
        print(f'round {r} {names[arm]:>11s}: {m["wall"] * 1e3:.3f} ms/step '
              f'wall, {m["cpu"] * 1e3:.3f} ms/step CPU; summaries '
              f'{m["hook_wall"] * 1e3:.4f} ms/step wall, '
              f'{m["hook_cpu"] * 1e3:.4f} ms/step CPU; fit {m["total"]:.2f} s',
              flush=True)
  finally:
    shutil.rmtree(workdir, ignore_errors=True)
  med = lambda arm, k: statistics.median(m[k] for m in runs[arm])
  paired = lambda arm, k: statistics.median(
      m[k] / b[k] for m, b in zip(runs[arm], runs[None]))
  print(f'\nLeNet-300-100, {data.name}, {args.steps} steps (timed from step '
        f'{args.warmup}), batch {data.batch_size}, {args.rounds} interleaved '
        f'rounds; load average after: {os.getloadavg()[0]:.2f}')
  print('  A/B: step time with summaries / without (paired median over '
        'rounds); in-hook: time inside the summaries\' after_step per step / '
        'base step time')
  for arm in arms[1:]:
    print(f'  {names[arm]:>11s}: A/B wall {paired(arm, "wall"):.4f}, A/B CPU '
          f'{paired(arm, "cpu"):.4f}; in-hook wall '
          f'{med(arm, "hook_wall") / med(None, "wall"):.3%}, in-hook CPU '
          f'{med(arm, "hook_cpu") / med(None, "cpu"):.3%}')
  print(f'  base (none): {med(None, "wall") * 1e3:.3f} ms/step wall, '
        f'{med(None, "cpu") * 1e3:.3f} ms/step CPU')


if __name__ == '__main__':
  main()
