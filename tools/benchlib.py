"""Small helpers shared by the benchmark scripts in tools/."""
import math
import os
import statistics
import subprocess
import sys
import time

from tf_tickets import data as data_lib
from tf_tickets import training
from tf_tickets import stats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BEGIN = '<!-- {name}:begin -->'
END = '<!-- {name}:end -->'


def update_section(path, name, body):
  """Replaces the text between the markers of section `name` in `path`
  (appending the section if it is not there yet)."""
  begin, end = BEGIN.format(name=name), END.format(name=name)
  text = open(path).read() if os.path.exists(path) else '# Benchmarks\n'
  block = f'{begin}\n{body.rstrip()}\n{end}'
  if begin in text and end in text:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    text = head + block + tail
  else:
    text = text.rstrip() + '\n\n' + block + '\n'
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, path)


def run_train(gin_file, params, output_dir, log):
  """Runs `python -m tf_tickets.train` on gin/`gin_file` with `params`
  (gin bindings) into `output_dir`, appending the command and its output to
  `log`; exits with one error line if the run fails."""
  cmd = [sys.executable, '-m', 'tf_tickets.train',
         f'--gin_file={os.path.join(REPO, "gin", gin_file)}',
         f'--output_dir={output_dir}', '--quiet']
  cmd += [f'--gin_param={p}' for p in params]
  with open(log, 'a') as f:
    f.write(' '.join(cmd) + '\n')
    f.flush()
    proc = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT,
                          check=False)
  if proc.returncode:
    raise SystemExit(f'error: {" ".join(cmd)} failed; see {log}')


def publish(lines, path, name):
  """Prints a result section and, if `path` is given, writes it there."""
  text = '\n'.join(lines)
  print(text)
  if path:
    update_section(path, name, text)
  return text


def interleaved(fns, repeats, warmup=1):
  """Times each zero-arg callable `repeats` times, interleaved round-robin
  (so a busy machine slows all of them alike); returns {name: [seconds]}."""
  for _ in range(warmup):
    for fn in fns.values():
      fn()
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      t = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - t)
  return times


def median(values):
  return statistics.median(values)




def ci(values):
  """(mean, half-width of the 95% t confidence interval) of `values` (paired
  differences, one per seed); the half-width is inf below 2 values."""
  m = statistics.mean(values)
  n = len(values)
  if n < 2:
    return m, math.inf
  t = stats.t_quantile(0.975, n - 1)
  return m, t * statistics.stdev(values) / math.sqrt(n)


def fmt_ci(values, digits=2):
  """'+m [lo, hi]' of the 95% CI of `values`."""
  m, h = ci(values)
  return f'{m:+.{digits}f} [{m - h:+.{digits}f}, {m + h:+.{digits}f}]'


class WindowClock(training.Hook):
  """Times training steps (warmup, steps]; its events make the compiled
  loop stop there and nowhere else."""

  def __init__(self, warmup, steps):
    self.warmup, self.steps, self.t0, self.t1 = warmup, steps, None, None

  def next_event(self, step):
    return self.warmup if step < self.warmup else self.steps

  def after_step(self, ctx, step, grads):
    if step == self.warmup:
      self.t0 = time.perf_counter()
    elif step == self.steps:
      self.t1 = time.perf_counter()


def load_data(idx_dir, **kwargs):
  """Fashion-MNIST from `idx_dir`, or the test fixture if it is missing."""
  if os.path.isdir(idx_dir):
    return data_lib.load_dataset('fashion_mnist', idx_dir=idx_dir, **kwargs)
  fixture = os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), 'tests', 'data', 'fashion_mnist_small')
  return data_lib.load_dataset('fashion_mnist', idx_dir=fixture,
                               validation_examples=500, **kwargs)
