"""Times .tflite models on LiteRT, each in its own worker process.

Why processes: timing several interpreters interleaved in one process
distorts small models. Measured here (LiteRT 2.3, 1 thread, batch 1, a
784-2048-2048-10 MLP): the same block-sparse dynamic-range model took
0.022 ms alone in its process, 0.040 ms interleaved with 11 other
interpreters and 0.091 ms interleaved with 5 others, while the dense
dynamic-range model under XNNPack took 0.057, 0.159 and 0.098 ms - so
in-process ratios changed with the company a model kept. Here every
(model, kernels) combination runs in its own process; the parent asks the
workers for `per_round` timed invokes each, one worker after the other in
an order rotated every round, so machine load hits all alike and the
per-round ratios are paired.

    python tools/litert_workers.py MODEL.tflite xnnpack 1   # a worker
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable-next=g-import-not-at-top,wrong-import-position
from tf_tickets.export import interpreter  # noqa: E402

# Kernels timed -> the export's runtime of that name (`export.interpreter`).
RUNTIME_OF = {'xnnpack': 'default', 'builtin': 'builtin'}
KERNELS = tuple(RUNTIME_OF)


def load_interpreter(content, threads, kernels):
  """An allocated interpreter of .tflite bytes; `kernels` in KERNELS.
  `export.interpreter` imports LiteRT without TensorFlow, so timing .tflite
  files also works where TensorFlow cannot be imported (e.g. under
  `qemu-x86_64 -cpu Nehalem`, a CPU without AVX)."""
  it = interpreter.make_interpreter(content, RUNTIME_OF[kernels], threads)
  it.allocate_tensors()
  return it


def _serve(path, kernels, threads):
  """The worker: loads the model, then answers 'N' with N invoke times
  (ms, JSON) and 'out' with the output (JSON) until stdin closes."""
  with open(path, 'rb') as f:
    content = f.read()
  try:
    it = load_interpreter(content, threads, kernels)
  except (RuntimeError, ValueError) as e:
    print(json.dumps({'error': str(e).strip().splitlines()[0][:160]}),
          flush=True)
    return
  inp = it.get_input_details()[0]
  it.set_tensor(inp['index'], np.random.RandomState(0).uniform(
      0, 255, inp['shape']).astype(inp['dtype']))
  it.invoke()
  print(json.dumps({'ready': True}), flush=True)
  for line in sys.stdin:
    if line.strip() == 'out':
      out = it.get_tensor(it.get_output_details()[0]['index'])
      print(json.dumps(np.asarray(out, np.float64).ravel().tolist()),
            flush=True)
      continue
    times = []
    for _ in range(int(line)):
      start = time.perf_counter()
      it.invoke()
      times.append((time.perf_counter() - start) * 1e3)
    print(json.dumps(times), flush=True)


class _Worker:

  def __init__(self, path, kernels, threads):
    self.proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), path, kernels,
         str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    self.status = json.loads(self.proc.stdout.readline() or
                             '{"error": "the worker died"}')

  def ask(self, line):
    self.proc.stdin.write(f'{line}\n')
    self.proc.stdin.flush()
    return json.loads(self.proc.stdout.readline())

  def close(self):
    self.proc.stdin.close()
    self.proc.wait(timeout=30)


def time_models(paths, kernels=KERNELS, threads=1, rounds=30, per_round=100,
                warmup=2):
  """{(name, kernels): row} for `paths` ({name: .tflite path}).

  A row: median_ms, p10_ms, p90_ms over all timed invokes, round_ms (the
  median of each round), output (for parity), or error (the runtime
  refused the model with these kernels).
  """
  workers = {}
  try:
    for name, path in paths.items():
      for k in kernels:
        workers[(name, k)] = _Worker(path, k, threads)
    live = [key for key, w in workers.items() if 'error' not in w.status]
    times = {key: [] for key in live}
    for r in range(-warmup, rounds):
      shift = r % max(1, len(live))
      for key in live[shift:] + live[:shift]:
        t = workers[key].ask(per_round)
        if r >= 0:
          times[key].append(t)
    rows = {}
    for key, w in workers.items():
      if key not in times:
        rows[key] = dict(error=w.status['error'])
        continue
      t = np.asarray(times[key])
      rows[key] = dict(median_ms=float(np.median(t)),
                       p10_ms=float(np.percentile(t, 10)),
                       p90_ms=float(np.percentile(t, 90)),
                       round_ms=np.median(t, axis=1),
                       output=np.asarray(w.ask('out')))
    return rows
  finally:
    for w in workers.values():
      w.close()


if __name__ == '__main__':
  _serve(sys.argv[1], sys.argv[2], int(sys.argv[3]))
