"""Training speed, the one benchmark of the loop: our loop as runs ship it
against `model.fit`, a hand-written TensorFlow loop and a jitted JAX/optax
loop of the same masked MLP, interleaved in one process.

LeNet-300-100 on Fashion-MNIST, batch 60, Adam 1.2e-3, ERK 90% masks (the
same masks and initial weights in every arm):

* ours/dense, ours/static, ours/set, ours/rigl: `tf_tickets.training.Trainer`
  with the sparse-training hook (update every 100 steps), as `python -m
  tf_tickets.train` runs it, with its default settings (100 steps per
  compiled call, stopping at every mask update);
* ours/static + summaries: the same with the TensorBoard hooks a run has
  (`summaries.every` 1000): the cost of the dashboards;
* keras/fit (dense): `model.fit` of the plain tf_keras model on the same
  input pipeline: the loop's own cost against the Keras default;
* tf/hand: a minimal masked MLP + Adam written in TensorFlow,
  `tf.function(jit_compile=True)` running 100 steps per call on data held
  on the device: the TensorFlow limit;
* jax/optax: the same masked MLP with `optax.adam`, one `jax.jit` step per
  Python call fed numpy batches (the loop jaxpruner's examples run): the
  peer reference (`pip install -e '.[bench]'`).

Each arm trains `--steps` steps per repetition; only steps after `--warmup`
are timed (tracing and compilation excluded). Repetitions are interleaved
(every other one in reverse order) so that a busy machine slows all arms
alike; the table reports the median steps/s and the paired per-repetition
ratios, and the RigL cost also as a geometric mean with its 95% interval.
`--startup` also times the command line to the first training step (a
one-step run).

    python tools/bench_speed.py --steps 3000 --repeats 5 --startup \
        --write docs/benchmarks.md
"""

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np

import tf_tickets as tt
import tensorflow_model_optimization as tfmot  # after tf_tickets: tf_keras
from tf_tickets import algorithms
from tf_tickets import data as data_lib
from tf_tickets import masks as masks_lib
from tf_tickets import models
from tf_tickets import training
from tf_tickets import wrapper as wrapper_lib
from tf_tickets import summaries as summaries_lib
from tf_tickets.keras import keras
import tensorflow as tf
from tools import benchlib

FMNIST = '/usr/share/datasets/fashion-mnist'
LR = 1.2e-3
BATCH = 60
UPDATE_EVERY = 100


def _sparse_model(data, method, sparsity, network='lenet_300_100',
                  steps=1000):
  model = tt.wrap(models.build_for(data, name=network))
  cfg = algorithms.SparseTrainingSettings(
      method=method, sparsity=sparsity, distribution='erk',
      update_every=UPDATE_EVERY, end_step=0.75)
  algorithm = algorithms.make(
      cfg, tt.pruning.target_sparsities(model, cfg), 0,
      algorithms.RunSteps(steps, data.steps_per_epoch))
  masks_lib.init_masks(model, algorithm.sparsities, seed=0)
  return model, algorithm


def ours(data, method, sparsity, warmup, steps, network='lenet_300_100',
         summaries=False, **config_changes):
  """Our loop; `method` None trains the dense network; `summaries` adds
  the TensorBoard hooks a run has (`summaries.every` at its default)."""
  model, algorithm = _sparse_model(data, method or 'static', sparsity,
                                   network, steps)
  if method is None:
    masks_lib.set_masks(model, {k: np.ones(s) for k, s in
                                masks_lib.weight_shapes(model).items()})
  hooks = [] if method is None else [training.MaskHook(algorithm)]
  config = training.TrainingConfig(
      steps=steps, optimizer='adam', learning_rate=LR, eval_every=steps,
      checkpoint_every=10 * steps, deterministic=False).replace(
          **config_changes)

  def run():
    clock = benchlib.WindowClock(warmup, steps)
    with tempfile.TemporaryDirectory() as d:
      extra, writer = [], None
      if summaries:
        extra = [summaries_lib.SummaryHook(), summaries_lib.TrainingScalars()]
        writer = summaries_lib.file_writer(d)
      training.Trainer(model, data, config, tf.distribute.get_strategy(), d,
                       hooks=hooks + extra + [clock], writer=writer,
                       quiet=True).fit()
      if writer is not None:
        writer.close()
    return (steps - warmup) / (clock.t1 - clock.t0)
  return run


class _FitClock(keras.callbacks.Callback):
  """Times batches (warmup, steps] of one `model.fit` epoch."""

  def __init__(self, warmup, steps):
    super().__init__()
    self.warmup, self.steps, self.t0, self.t1 = warmup, steps, None, None

  def on_train_batch_end(self, batch, logs=None):
    if batch + 1 == self.warmup:
      self.t0 = time.perf_counter()
    elif batch + 1 == self.steps:
      self.t1 = time.perf_counter()


def keras_fit(data, warmup, steps):
  """`model.fit` of the plain dense tf_keras model (no tf_tickets), on the
  same input pipeline, optimizer and initial weights: what the loop's own
  cost is measured against."""
  model = models.build_for(data)
  model.compile(keras.optimizers.Adam(LR), keras.losses.
                SparseCategoricalCrossentropy(from_logits=True))
  start = [w.copy() for w in model.get_weights()]

  def run():
    model.set_weights(start)
    clock = _FitClock(warmup, steps)
    model.fit(data_lib.train_dataset(data, 0), steps_per_epoch=steps,
              epochs=1, verbose=0, callbacks=[clock])
    return (steps - warmup) / (clock.t1 - clock.t0)
  return run


def fit_arm(data, warmup, steps, kind, per_call=1, sparsity=0.9):
  """`model.fit` of LeNet-300-100 (ERK masks): 'static' (our wrapper, no
  callback), 'rigl' (our callback), or 'tfmot' (prune_low_magnitude at a
  constant sparsity pruning every 100 steps + UpdatePruningStep); a fresh
  model per repetition (tracing falls before `warmup`)."""
  def run():
    cb = []
    if kind == 'tfmot':
      schedule = tfmot.sparsity.keras.ConstantSparsity(
          sparsity, begin_step=0, frequency=UPDATE_EVERY)

      def prune_dense(layer):  # tfmot's way: its wrapper on Dense layers
        if isinstance(layer, keras.layers.Dense):
          return tfmot.sparsity.keras.prune_low_magnitude(
              layer, pruning_schedule=schedule)
        return layer.__class__.from_config(layer.get_config())
      model = keras.models.clone_model(models.build_for(data),
                                       clone_function=prune_dense)
      cb = [tfmot.sparsity.keras.UpdatePruningStep()]
    else:
      model, _ = _sparse_model(data, 'static', sparsity, steps=steps)
      if kind == 'rigl':
        cb = [tt.callbacks.SparseTraining(
            method='rigl', sparsity=sparsity, distribution='erk',
            update_every=UPDATE_EVERY, begin_step=UPDATE_EVERY - 1,
            end_step=0.75,
            skip_update_on_mask_steps=per_call == 1,
            data=data_lib.train_dataset(data, 1), steps=steps)]
    model.compile(keras.optimizers.Adam(LR), keras.losses.
                  SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=per_call)
    clock = _FitClock(warmup, steps)
    model.fit(data_lib.train_dataset(data, 0), steps_per_epoch=steps,
              epochs=1, verbose=0, callbacks=cb + [clock])
    return (steps - warmup) / (clock.t1 - clock.t0)
  return run


def fit_table(data, warmup, steps, repeats):
  """Sparse training in model.fit: RigL callbacks against the same wrapped
  model with static masks and against tfmot, at 1 and 100 steps per call."""
  arms = {}
  for per_call in (1, 100):
    for kind in ('static', 'rigl', 'tfmot'):
      arms[f'{kind}, steps_per_execution={per_call}'] = fit_arm(
          data, warmup, steps, kind, per_call)
  rates = {k: [] for k in arms}
  for rep in range(repeats):  # every other repetition in reverse order
    for k in (list(arms) if rep % 2 == 0 else list(arms)[::-1]):
      rates[k].append(arms[k]())
  lines = [f'model.fit, LeNet-300-100, Fashion-MNIST, batch {BATCH}, Adam '
           f'{LR}, 90% (ERK; tfmot: 90% per layer), mask updates every '
           f'{UPDATE_EVERY} steps, steps {warmup + 1}-{steps} timed, '
           f'{repeats} interleaved repetitions (a fresh model each).', '',
           '| arm | steps/s (median) | RigL or tfmot / static (paired) '
           '| RigL / tfmot (paired) |', '|---|---|---|---|']
  for name, v in rates.items():
    kind, per_call = name.split(', ')[0], name.split('=')[1]
    base = rates[f'static, steps_per_execution={per_call}']
    ratio = [a / b for a, b in zip(v, base)]
    tfmot = rates[f'tfmot, steps_per_execution={per_call}']
    versus = (_geomean_ci([a / b for a, b in zip(v, tfmot)])
              if kind == 'rigl' else '')
    lines.append(f'| {name} | {benchlib.median(v):.0f} | '
                 f'{_geomean_ci(ratio)} | {versus} |')
  return lines


def network_table(data, network, sparsity, warmup, steps, repeats):
  """Our loop on a conv net, dense / static / RigL, against the loop of
  one uncompiled step per call (jit_compile=False, steps_per_loop=1)."""
  arms = {}
  for label, method in (('dense', None), ('static', 'static'),
                        ('rigl', 'rigl')):
    arms[f'{label}/ours'] = ours(data, method, sparsity, warmup, steps,
                                 network)
    arms[f'{label}/uncompiled'] = ours(data, method, sparsity, warmup, steps,
                                       network, jit_compile=False,
                                       steps_per_loop=1)
  rates = {k: [] for k in arms}
  for fn in arms.values():
    fn()
  for _ in range(repeats):
    for k, fn in arms.items():
      rates[k].append(fn())
  lines = [f'{network} on Fashion-MNIST (28x28x1; CIFAR-10 cannot be '
           f'downloaded here), batch {BATCH}, Adam, ERK {sparsity:.0%}, '
           f'steps {warmup + 1}-{steps} timed, {repeats} interleaved '
           'repetitions.', '',
           '| network | steps/s, ours | steps/s, uncompiled, 1 step/call '
           '| speed-up (paired) |', '|---|---|---|---|']
  for label in ('dense', 'static', 'rigl'):
    a, b = rates[f'{label}/ours'], rates[f'{label}/uncompiled']
    ratios = [x / y for x, y in zip(a, b)]
    lines.append(f'| {label} | {benchlib.median(a):.0f} | '
                 f'{benchlib.median(b):.0f} | {benchlib.median(ratios):.2f} '
                 f'({min(ratios):.2f}-{max(ratios):.2f}) |')
  return lines


def _geomean_ci(ratios):
  """'g [lo, hi]': the geometric mean of paired ratios and the 95% t
  interval of the mean of their logarithms, exponentiated."""
  m, h = benchlib.ci([math.log(r) for r in ratios])
  return f'{math.exp(m):.3f} [{math.exp(m - h):.3f}, {math.exp(m + h):.3f}]'


def _mlp_arrays(data, sparsity):
  """Initial weights (masked), masks and normalisation of the same network."""
  model, _ = _sparse_model(data, 'static', sparsity)
  weights, masks = [], []
  for wr in wrapper_lib.wrappers(model):
    (kernel,), (mask,) = wr.prunable_weights, wr.masks
    m = mask.numpy().astype(np.float32)
    weights += [kernel.numpy() * m, wr.layer.bias.numpy()]
    masks.append(m)
  return weights, masks, np.float32(data.mean[0]), np.float32(data.std[0])


def _batches(data, steps, seed=0):
  """Index batches of `steps` steps: epoch permutations, remainder dropped."""
  n = len(data.x_train)
  spe = n // BATCH
  rng = np.random.RandomState(seed)
  out = []
  while len(out) < steps:
    perm = rng.permutation(n)
    out += [perm[i * BATCH:(i + 1) * BATCH] for i in range(spe)]
  return np.stack(out[:steps])


def tf_hand(data, sparsity, warmup, steps, per_call=100):
  """Masked MLP + Adam in TensorFlow, XLA-compiled, `per_call` steps/call."""
  weights, masks, mean, std = _mlp_arrays(data, sparsity)
  x_all = tf.constant(data.x_train.reshape(len(data.x_train), -1), tf.float32)
  y_all = tf.constant(data.y_train.astype(np.int32))
  idx = tf.constant(_batches(data, steps), tf.int32)
  params = [tf.Variable(w) for w in weights]
  mask_t = [tf.constant(m) for m in masks]
  m_slots = [tf.Variable(tf.zeros_like(w)) for w in weights]
  v_slots = [tf.Variable(tf.zeros_like(w)) for w in weights]
  t_var = tf.Variable(0.0)
  b1, b2, eps = 0.9, 0.999, 1e-7

  def forward(x):
    h = (x - mean) / std
    for i in range(0, len(params), 2):
      h = tf.matmul(h, params[i]) + params[i + 1]
      if i + 2 < len(params):
        h = tf.nn.relu(h)
    return h

  @tf.function(jit_compile=True)
  def run_steps(start):
    for s in tf.range(start, start + per_call):
      b = idx[s]
      x, y = tf.gather(x_all, b), tf.gather(y_all, b)
      with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            y, forward(x)))
      grads = tape.gradient(loss, params)
      t_var.assign_add(1.0)
      t = t_var.read_value()
      lr = LR * tf.sqrt(1 - b2 ** t) / (1 - b1 ** t)
      for i, (p, g) in enumerate(zip(params, grads)):
        mask = mask_t[i // 2] if i % 2 == 0 else None
        if mask is not None:
          g = g * mask
        m_slots[i].assign(b1 * m_slots[i] + (1 - b1) * g)
        v_slots[i].assign(b2 * v_slots[i] + (1 - b2) * g * g)
        new = p - lr * m_slots[i] / (tf.sqrt(v_slots[i]) + eps)
        p.assign(new * mask if mask is not None else new)
    return t_var.read_value()

  def run():
    for w, p in zip(weights, params):
      p.assign(w)
    step = 0
    while step < warmup:
      run_steps(tf.constant(step)).numpy()
      step += per_call
    t0 = time.perf_counter()
    while step < steps:
      run_steps(tf.constant(step)).numpy()
      step += per_call
    return (steps - warmup) / (time.perf_counter() - t0)
  return run


def jax_optax(data, sparsity, warmup, steps):
  """The same masked MLP with optax.adam, one jitted step per call."""
  import jax
  import jax.numpy as jnp
  import optax
  weights, masks, mean, std = _mlp_arrays(data, sparsity)
  x_all = data.x_train.reshape(len(data.x_train), -1).astype(np.float32)
  y_all = data.y_train.astype(np.int32)
  idx = _batches(data, steps)
  opt = optax.adam(LR)
  mask_tree = [jnp.asarray(masks[i // 2]) if i % 2 == 0 else None
               for i in range(len(weights))]

  def loss_fn(params, x, y):
    h = (x - mean) / std
    for i in range(0, len(params), 2):
      h = h @ params[i] + params[i + 1]
      if i + 2 < len(params):
        h = jax.nn.relu(h)
    return optax.softmax_cross_entropy_with_integer_labels(h, y).mean()

  @jax.jit
  def step_fn(params, opt_state, x, y):
    grads = jax.grad(loss_fn)(params, x, y)
    grads = [g if m is None else g * m for g, m in zip(grads, mask_tree)]
    updates, opt_state = opt.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    params = [p if m is None else p * m for p, m in zip(params, mask_tree)]
    return params, opt_state

  def run():
    params = [jnp.asarray(w) for w in weights]
    opt_state = opt.init(params)
    t0 = None
    for s in range(steps):
      if s == warmup:
        jax.block_until_ready(params)
        t0 = time.perf_counter()
      b = idx[s]
      params, opt_state = step_fn(params, opt_state, x_all[b], y_all[b])
    jax.block_until_ready(params)
    return (steps - warmup) / (time.perf_counter() - t0)
  return run


def startup_seconds(repeats=3):
  """(seconds from the command to the end of a one-step run, an upper
  bound of the time to the first training step; seconds of a process that
  only imports TensorFlow and tf_keras), medians."""
  cmd = [sys.executable, '-m', 'tf_tickets.train',
         f'--gin_file={os.path.join(REPO, "gin", "lenet_imp.gin")}',
         "--gin_param=dataset.name='fashion_mnist'",
         f"--gin_param=dataset.idx_dir='{FMNIST}'",
         '--gin_param=lottery.levels=0', '--gin_param=training.steps=1',
         '--gin_param=summaries.enabled=False', '--quiet']
  imports = [sys.executable, '-c', 'import os; os.environ['
             '"TF_USE_LEGACY_KERAS"] = "1"; import tensorflow, tf_keras']
  times, import_times = [], []
  for _ in range(repeats):  # interleaved with the import alone
    with tempfile.TemporaryDirectory() as d:
      for command, out in ((cmd + [f'--output_dir={d}/run'], times),
                           (imports, import_times)):
        t = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t)
  return benchlib.median(times), benchlib.median(import_times)


def main():
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--steps', type=int, default=3000)
  p.add_argument('--warmup', type=int, default=100)
  p.add_argument('--repeats', type=int, default=5)
  p.add_argument('--sparsity', type=float, default=0.9)
  p.add_argument('--idx_dir', default=FMNIST)
  p.add_argument('--startup', action='store_true')
  p.add_argument('--no_jax', action='store_true')
  p.add_argument('--network', default=None,
                 help='a conv net (conv6, resnet20): dense/static/RigL '
                 'against the uncompiled loop instead')
  p.add_argument('--fit', action='store_true',
                 help='sparse training in model.fit: our callbacks against '
                 'static masks and tfmot instead')
  p.add_argument('--write', default=None, help='benchmarks.md to update')
  args = p.parse_args()
  data = data_lib.load_dataset('fashion_mnist', idx_dir=args.idx_dir,
                               batch_size=BATCH)
  if args.fit:
    lines = fit_table(data, args.warmup, args.steps, args.repeats)
    lines += ['', '    ' + ' '.join(['python', 'tools/bench_speed.py'] +
                                    sys.argv[1:])]
    benchlib.publish(lines, args.write, 'speed-fit')
    return
  if args.network:
    lines = network_table(data, args.network, args.sparsity, args.warmup,
                          args.steps, args.repeats)
    lines += ['', '    ' + ' '.join(['python', 'tools/bench_speed.py'] +
                                    sys.argv[1:])]
    benchlib.publish(lines, args.write, f'speed-{args.network}')
    return
  w, s, r = args.warmup, args.steps, args.sparsity
  arms = {'keras/fit (dense)': keras_fit(data, w, s),
          'ours/dense': ours(data, None, r, w, s)}
  arms.update({f'ours/{m}': ours(data, m, r, w, s) for m in ('static', 'set',
                                                              'rigl')})
  arms['ours/static + summaries'] = ours(data, 'static', r, w, s,
                                         summaries=True)
  arms['tf/hand (XLA, 100 steps/call)'] = tf_hand(data, r, w, s)
  if not args.no_jax:
    arms['jax/optax (jit)'] = jax_optax(data, r, w, s)
  rates = {k: [] for k in arms}
  for fn in arms.values():
    fn()  # compile
  for rep in range(args.repeats):
    # Counterbalanced: every other repetition runs the arms in reverse
    # order, so a machine that speeds up or slows down during a repetition
    # favours no arm.
    for k in (list(arms) if rep % 2 == 0 else list(arms)[::-1]):
      rates[k].append(arms[k]())
  ref = 'jax/optax (jit)' if 'jax/optax (jit)' in arms else (
      'tf/hand (XLA, 100 steps/call)')
  lines = [
      f'LeNet-300-100, Fashion-MNIST, batch {BATCH}, Adam {LR}, ERK '
      f'{r:.0%}, steps {w + 1}-{s} timed, {args.repeats} interleaved '
      f'repetitions, {os.cpu_count()} CPU cores.', '',
      f'| arm | steps/s (median) | ratio to {ref} (paired, per repetition) |',
      '|---|---|---|']
  for k, v in rates.items():
    ratios = [a / b for a, b in zip(v, rates[ref])]
    lines.append(f'| {k} | {benchlib.median(v):.0f} | '
                 f'{benchlib.median(ratios):.2f} '
                 f'({min(ratios):.2f}-{max(ratios):.2f}) |')
  static = rates['ours/static']
  rigl = [a / b for a, b in zip(static, rates['ours/rigl'])]
  lines += ['', f'RigL cost (static steps/s / RigL steps/s, paired): median '
            f'{benchlib.median(rigl):.2f} ({min(rigl):.2f}-{max(rigl):.2f}); '
            f'geometric mean {_geomean_ci(rigl)}.']
  for name, a, b in (
      ('ours/static vs tf/hand', static,
       rates['tf/hand (XLA, 100 steps/call)']),
      ('ours/dense vs keras/fit (dense)', rates['ours/dense'],
       rates['keras/fit (dense)']),
      ('ours/static + summaries vs ours/static',
       rates['ours/static + summaries'], static)):
    ratio = [x / y for x, y in zip(a, b)]
    lines += [f'{name} (steps/s, paired): median '
              f'{benchlib.median(ratio):.2f} ({min(ratio):.2f}-'
              f'{max(ratio):.2f}); geometric mean {_geomean_ci(ratio)}.']
  if args.startup:
    total, imports = startup_seconds()
    lines += [f'Command to the end of a one-step run (median of 3): '
              f'{total:.1f} s, of which importing TensorFlow and tf_keras '
              f'alone takes {imports:.1f} s on this machine.']
  lines += ['', '    ' + ' '.join(['python', 'tools/bench_speed.py'] +
                                  sys.argv[1:])]
  benchlib.publish(lines, args.write, 'speed')


if __name__ == '__main__':
  main()
