"""Times .tflite models side by side with the LiteRT interpreter.

    python tools/benchmark_tflite.py DENSE.tflite SPARSE.tflite [...] \
        [--threads 1,2] [--runs 200] [--warmup 20] [--kernels xnnpack]

    python tools/benchmark_tflite.py --mobilenet [--size 224] [--width 1.0] \
        [--sparsity 0.9] [--out /tmp/tf_tickets_mobilenet]

    python tools/benchmark_tflite.py --report RUN/export/level_N/report.json

    python tools/benchmark_tflite.py --export RUN/export/level_N \
        [--rounds 30] [--per_round 100] [--floor]

`--export` times an export's sparse .tflite files (and, for an export made
with `--compact`, the same dense conversions of its compact network,
`compact_*`) against the *best* dense conversion of the same network: it converts the export's SavedModel with
dense storage as float32, dynamic-range (per-tensor and per-channel Dense
scales), full-integer int8 (calibrated on random pixels: the timing does
not depend on it) and float16, runs every file with XNNPack on
('xnnpack') and off ('builtin'), each (file, kernels) in its own process
(`tools/litert_workers.py`: in-process interleaving distorts small models),
1 thread, batch 1, in interleaved rounds; it reports each sparse file's
paired speed-up (median over rounds of best-dense-round-time / its
round time) against the fastest dense (file, kernels). `--floor` adds two
models that are not networks to the same run: 'floor_io' (copies 10 inputs
to the output: the per-call cost of this input and output) and 'floor_fc'
(one dense FULLY_CONNECTED from the input to the output).

`--report` checks an export (`tf_tickets.export`) against the size targets
(TARGETS: LeNet-300-100 at >= 90% sparsity, float32.tflite <= 0.16x and
int8.tflite <= 0.09x the dense float32 .tflite) and prints one line per
target; with .tflite files or --mobilenet it then times them as well.

Every (model, threads, kernels) combination gets its own interpreter in this
one process (LiteRT's `ai_edge_litert.interpreter.Interpreter`), and the
timed `invoke()` calls are interleaved round-robin - each round runs every
combination once, in an order rotated from round to round - so load from
other processes on a shared CPU hits all of them alike. Reported per
combination: median, p10 and p90 latency over `--runs` rounds, and the
speed-up over the first model at the same threads and kernels, as the ratio
of medians and as the median of the per-round ratios (more robust on a busy
machine). All models get the same input (uniform random raw pixels 0..255).

`--kernels`: 'xnnpack' (the default op resolver: XNNPack delegate on, as in
apps), 'builtin' (BUILTIN_WITHOUT_DEFAULT_DELEGATES: TFLite's own kernels),
or 'xnnpack,builtin'. A model that XNNPack refuses is reported as such.

`--mobilenet` builds tf_tickets' MobileNet-v1 (models 'mobilenet_v1', RGB
input, 1000 classes), checks it against tfmot's PruneForLatencyOnXNNPack
(the pattern XNNPack's sparse inference needs: a 3x3 stride-2 'valid' conv
on 3 channels after 1-pixel zero padding, then depthwise 3x3 / 1x1 convs /
BN / ReLU6 up to global average pooling), wraps only its 1x1 convolutions,
prunes them at random to `--sparsity` (XNNPack uses its sparse kernels for
1x1 convs at least 2/3 sparse), and converts the stripped network twice with
`tf_tickets.export.convert`: dense storage and sparse storage
(EXPERIMENTAL_SPARSITY). XNNPack switches to its sparse (NCHW + SpMM) path
only for models with sparse weights (the delegate sets
XNN_FLAG_HINT_SPARSE_INFERENCE when a DENSIFY op feeds static sparse float
weights). The tool then times both and diagnoses which path ran: the sparse
path reorders the sums of the 1x1 convolutions, so bitwise identical outputs
of the dense and sparse model mean XNNPack ran the same dense kernels for
both. It also prints the CPU's ISA flags: XNNPack's `hardware-config.h`
(`xnn_is_chw_compatible_config`) disables the NCHW/sparse kernels on x86
CPUs with AVX ("on processors with AVX ISA dense inference is expected to be
faster than sparse"), so on such machines no speed-up is possible; ARM
phones take the sparse path.

To see the sparse path on an x86 machine, run the file mode (which imports
LiteRT only, not TensorFlow) on an emulated CPU without AVX:

    apt-get install qemu-user
    qemu-x86_64 -cpu Nehalem $(which python) tools/benchmark_tflite.py \
        OUT/mobilenet_dense.tflite OUT/mobilenet_sparse.tflite --threads 1
    qemu-x86_64 -cpu max ...   # the control: an emulated CPU with AVX

(On Nehalem the outputs differ in the low bits and the sparse model is
several times faster; with `-cpu max` they are bitwise identical again.
Emulated timings only show that the path changes - they are not latencies.
Under qemu-user /proc/cpuinfo still shows the host's ISA flags.)
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

# pylint: disable-next=g-import-not-at-top,wrong-import-position
from tf_tickets.export import interpreter
# pylint: disable-next=g-import-not-at-top,wrong-import-position
from tools import litert_workers
# pylint: disable-next=g-import-not-at-top,wrong-import-position
from tools.litert_workers import KERNELS, load_interpreter

# Size targets of issue 6: (model, at network sparsity >=, artifact, at most
# this many times the bytes of float32_dense.tflite).
TARGETS = (
    ('lenet_300_100', 0.9, 'float32.tflite', 0.16),
    ('lenet_300_100', 0.9, 'int8.tflite', 0.09),
)


def size_targets(report):
  """The TARGETS for the model of an export report, each with its status."""
  out = []
  sparsity = (report.get('sparsity') or {}).get('sparsity', 0.0)
  by_name = {a['name']: a for a in report['artifacts']}
  for model_name, min_sparsity, name, limit in TARGETS:
    if report['model'] != model_name:
      continue
    entry = dict(model=model_name, artifact=name, limit=limit,
                 at_sparsity=min_sparsity, network_sparsity=sparsity)
    a = by_name.get(name)
    if a is None:
      entry['status'] = 'not exported'
    else:
      entry['ratio'] = a['ratio_to_dense']
      met = a['ratio_to_dense'] <= limit
      if sparsity + 1e-9 < min_sparsity:
        entry['status'] = (f'n/a: network sparsity {sparsity:.4f} < '
                           f'{min_sparsity} ({"met" if met else "not met"})')
      else:
        entry['status'] = 'met' if met else 'NOT MET'
    out.append(entry)
  return out


def format_targets(targets):
  lines = []
  for t in targets:
    ratio = f'{t["ratio"]:.4f}' if 'ratio' in t else '-'
    lines.append(f'target: {t["model"]} at sparsity >= {t["at_sparsity"]}: '
                 f'{t["artifact"]} <= {t["limit"]} x dense: {ratio} '
                 f'-> {t["status"]}')
  return '\n'.join(lines) or 'no size target for this model'


def _cpu_flags():
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('flags') or line.startswith('Features'):
          return set(line.split(':', 1)[1].split())
  except OSError:
    pass
  return set()


def _cpu_name():
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def benchmark(models, threads=(1, 2), kernels=('xnnpack',), runs=200,
              warmup=20, seed=0):
  """Times `models` ({name: tflite bytes}); returns a list of row dicts.

  The first model is the baseline of the speed-ups.
  """
  combos, rows = [], []
  inputs = {}
  for k in kernels:
    for t in threads:
      for name, content in models.items():
        row = dict(model=name, threads=t, kernels=k, bytes=len(content))
        try:
          it = load_interpreter(content, t, k)
        except (RuntimeError, ValueError) as e:
          row['error'] = str(e).strip().splitlines()[0][:160]
          rows.append(row)
          continue
        inp = it.get_input_details()[0]
        if inp['dtype'] != np.float32:
          raise SystemExit(f'{name}: input {inp["dtype"]} - this tool feeds '
                           'float32 raw pixels')
        shape = tuple(int(d) for d in inp['shape'])
        if shape not in inputs:
          inputs[shape] = np.random.RandomState(seed).uniform(
              0, 255, shape).astype(np.float32)
        it.set_tensor(inp['index'], inputs[shape])
        it.invoke()
        row['output'] = np.array(
            it.get_tensor(it.get_output_details()[0]['index']))
        combos.append((it, row))
        rows.append(row)
  for _ in range(warmup):
    for it, _ in combos:
      it.invoke()
  times = [[] for _ in combos]
  for r in range(runs):
    order = list(range(len(combos)))
    shift = r % max(1, len(order))
    for i in order[shift:] + order[:shift]:
      it = combos[i][0]
      start = time.perf_counter()
      it.invoke()
      times[i].append(time.perf_counter() - start)
  for (_, row), t in zip(combos, times):
    t = np.asarray(t) * 1e3
    row.update(median_ms=float(np.median(t)),
               p10_ms=float(np.percentile(t, 10)),
               p90_ms=float(np.percentile(t, 90)), samples=t)
  base_name = next(iter(models))
  for row in rows:
    base = next((b for b in rows if b['model'] == base_name
                 and b['threads'] == row['threads']
                 and b['kernels'] == row['kernels'] and 'samples' in b), None)
    if base is None or 'samples' not in row:
      continue
    row['speedup'] = base['median_ms'] / row['median_ms']
    row['paired_speedup'] = float(np.median(base['samples'] / row['samples']))
    row['max_abs_diff'] = float(np.max(np.abs(base['output'] - row['output'])))
    row['bitwise_equal'] = bool(np.array_equal(base['output'], row['output']))
  return rows


def format_rows(rows):
  lines = [f'{"kernels":8s} {"thr":>3s} {"model":34s} {"bytes":>12s} '
           f'{"median ms":>10s} {"p10":>8s} {"p90":>8s} {"speed-up":>8s} '
           f'{"paired":>7s} {"out = base":>10s}']
  for r in rows:
    head = (f'{r["kernels"]:8s} {r["threads"]:3d} {r["model"][:34]:34s} '
            f'{r["bytes"]:12,d} ')
    if 'error' in r:
      lines.append(head + f'refused: {r["error"]}')
      continue
    same = ('bitwise' if r.get('bitwise_equal')
            else f'{r["max_abs_diff"]:.1e}' if 'max_abs_diff' in r else '')
    lines.append(head + f'{r["median_ms"]:10.3f} {r["p10_ms"]:8.3f} '
                 f'{r["p90_ms"]:8.3f} {r.get("speedup", 0):8.3f} '
                 f'{r.get("paired_speedup", 0):7.3f} {same:>10s}')
  return '\n'.join(lines)


def build_mobilenet(size, width, sparsity, out_dir, seed=0):
  """Dense and sparse-storage TFLite of a MobileNet-v1 with sparse 1x1 convs."""
  import tf_tickets  # pylint: disable=g-import-not-at-top
  from tf_tickets import export  # pylint: disable=g-import-not-at-top
  from tf_tickets import models  # pylint: disable=g-import-not-at-top
  from tf_tickets import wrapper  # pylint: disable=g-import-not-at-top
  from tf_tickets.keras import keras  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=g-import-not-at-top
  from tensorflow_model_optimization.python.core.sparsity.keras import (
      pruning_policy)

  model = models.build_model(
      'mobilenet_v1', input_shape=(size, size, 3), num_classes=1000,
      mean=(127.5,) * 3, std=(127.5,) * 3, seed=seed,
      options={'mobilenet_v1': {'width_multiplier': width}})
  try:
    pruning_policy.PruneForLatencyOnXNNPack().ensure_model_supports_pruning(
        model)
    policy = 'supported'
  except ValueError as e:
    policy = f'NOT supported: {e}'
  is_1x1 = lambda l: (isinstance(l, keras.layers.Conv2D)  # noqa: E731
                      and not isinstance(l, keras.layers.DepthwiseConv2D)
                      and tuple(l.kernel_size) == (1, 1))
  wrapped = wrapper.wrap(model, wrap_layer=is_1x1)
  keys = list(wrapper.prunable_entries(wrapped))
  tf_tickets.prune_randomly(wrapped, {k: sparsity for k in keys}, seed=seed)
  report = tf_tickets.sparsity_report(wrapped)
  stripped = wrapper.strip(wrapped)
  os.makedirs(out_dir, exist_ok=True)
  sm_dir = os.path.join(out_dir, 'saved_model')
  export.save_saved_model(stripped, sm_dir)
  paths = {}
  for stem, sparse in (('mobilenet_dense', False), ('mobilenet_sparse', True)):
    content = export.convert(sm_dir, 'none', sparse)
    paths[stem] = os.path.join(out_dir, stem + '.tflite')
    with open(paths[stem], 'wb') as f:
      f.write(content)
  total = sum(int(np.prod(v.shape)) for v in stripped.weights)
  info = dict(policy=policy, pruned_layers=len(keys),
              pruned_sparsity=report['sparsity'], prunable=report['params'],
              params=total, flops_share=_pointwise_mac_share(stripped, is_1x1))
  return paths, info


def _pointwise_mac_share(model, is_1x1):
  """Share of the multiply-adds in the 1x1 convolutions (dense count)."""
  from tf_tickets.keras import keras  # pylint: disable=g-import-not-at-top
  total = pw = 0
  for layer in model.layers:
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                          keras.layers.Dense)):
      out = layer.output_shape
      k = layer.weights[0].shape
      positions = int(np.prod(out[1:-1])) if len(out) > 2 else 1
      macs = positions * int(np.prod(k))  # depthwise: k = (3, 3, C, 1)
      total += macs
      if is_1x1(layer):
        pw += macs
  return pw / total if total else 0.0


def _dense_variants(sm, shape, out_dir, prefix=''):
  """{name: path} of dense conversions of the SavedModel `sm`."""
  # TensorFlow only here: the file modes run on LiteRT alone.
  # pylint: disable-next=g-import-not-at-top
  from tf_tickets.export import converter
  images = np.random.RandomState(0).uniform(0, 255, [64] + shape).astype(
      np.float32)
  variants = {'float32_dense': ('none', True),
              'dynamic_dense': ('dynamic', True),
              'dynamic_dense_per_channel': ('dynamic', False),
              'int8_dense': ('int8', True), 'float16_dense': ('float16', True)}
  paths = {}
  for name, (q, per_tensor) in variants.items():
    content = converter.convert(sm, q, sparse=False, calibration=images,
                                dense_per_tensor=per_tensor)
    paths[prefix + name] = os.path.join(out_dir, prefix + name + '.tflite')
    with open(paths[prefix + name], 'wb') as f:
      f.write(content)
  return paths


def _floor_models(shape, classes, out_dir):
  """{name: path} of the cheapest models with the network's input and output.

  'floor_io' copies the first `classes` inputs to the output (no
  multiply-add: about the interpreter's per-call cost for this input and
  output); 'floor_fc' is one float32 FULLY_CONNECTED from the flattened
  input to the output (kernel N(0, 0.01) from RandomState(0)).
  """
  # pylint: disable-next=g-import-not-at-top
  import tensorflow as tf
  size = int(np.prod(shape))
  kernel = tf.constant(np.random.RandomState(0).normal(
      0, 0.01, (size, classes)).astype(np.float32))
  bodies = {'floor_io': lambda x: tf.reshape(x, [1, size])[:, :classes],
            'floor_fc': lambda x: tf.matmul(tf.reshape(x, [1, size]), kernel)}
  paths = {}
  for name, body in bodies.items():
    fn = tf.function(body, input_signature=[
        tf.TensorSpec([1] + list(shape), tf.float32)])
    content = tf.lite.TFLiteConverter.from_concrete_functions(
        [fn.get_concrete_function()]).convert()
    paths[name] = os.path.join(out_dir, name + '.tflite')
    with open(paths[name], 'wb') as f:
      f.write(content)
  return paths


def compare_export(export_dir, rounds, per_round, floor=False):
  """Prints the sparse files of an export against the best dense one (and,
  with `floor`, the per-call floor of its input and output)."""
  with open(os.path.join(export_dir, 'report.json')) as f:
    report = json.load(f)
  sparse = {a['name'][:-len('.tflite')]: os.path.join(export_dir, a['name'])
            for a in report['artifacts']
            if a['kind'] == 'tflite' and a.get('storage') == 'sparse'}
  shape = report['input']['shape'][1:]
  with tempfile.TemporaryDirectory() as tmp:
    dense = _dense_variants(os.path.join(export_dir, 'saved_model'), shape,
                            tmp)
    compact = {}
    if report.get('compact'):  # exported with --compact
      compact = _dense_variants(
          os.path.join(export_dir, 'compact', 'saved_model'), shape, tmp,
          prefix='compact_')
    paths = {**dense, **compact, **sparse}
    if floor:
      paths.update(_floor_models(report['input']['shape'][1:],
                                 int(np.prod(report['output']['shape'][1:])),
                                 tmp))
    sizes = {name: os.path.getsize(p) for name, p in paths.items()}
    rows = litert_workers.time_models(paths, rounds=rounds,
                                      per_round=per_round)
  # A sparse file the export found wrong under a runtime is not timed as
  # usable there (e.g. XNNPack's wrong outputs for some block-sparse
  # dynamic-range files): its rows say so.
  wrong = {}
  for a in report['artifacts']:
    for runtime, error in (a.get('litert_errors') or {}).items():
      kernels = 'xnnpack' if runtime == 'default' else runtime
      wrong[(a['name'][:-len('.tflite')], kernels)] = error
  for key in wrong:
    if key in rows and 'error' not in rows[key]:
      rows[key] = dict(error='not usable, the export found: ' + wrong[key])
  timed = {k: r for k, r in rows.items() if 'error' not in r}
  best = min((k for k in timed if k[0] in dense),  # floor models excluded
             key=lambda k: timed[k]['median_ms'])
  sp = report.get('sparsity') or {}
  print(f'{report["model"]} from {export_dir}: sparsity '
        f'{sp.get("sparsity", 0):.4f}; LiteRT, 1 thread, batch 1, each file '
        f'in its own process, {rounds} interleaved rounds of {per_round} '
        f'invokes; CPU: {_cpu_name()}')
  if report.get('compact'):
    c = report['compact']
    print('compact network (empty units removed): widths '
          + ', '.join(f'{k} {r["width_before"]}->{r["width_after"]}'
                      for k, r in c['layers'].items())
          + f'; multiply-adds {c["macs_after"] / c["macs_before"]:.3f} of '
          f'the original; compact_* files are its dense conversions')
  print('\n| file | kernels | bytes | median ms | p10-p90 ms | vs best dense '
        '(paired) |\n|---|---|---|---|---|---|')
  for (name, kernels), r in rows.items():
    size = sizes[name]
    if 'error' in r:
      print(f'| {name} | {kernels} | {size:,d} | refused: {r["error"]} | | |')
      continue
    ratio = float(np.median(timed[best]['round_ms'] / r['round_ms']))
    mark = (' (best dense)' if (name, kernels) == best else
            ' (floor, not a network)' if name.startswith('floor_') else '')
    print(f'| {name}{mark} | {kernels} | {size:,d} | {r["median_ms"]:.4f} | '
          f'{r["p10_ms"]:.4f}-{r["p90_ms"]:.4f} | {ratio:.2f}x |')
  return 0


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('models', nargs='*', help='.tflite files; the first is '
                      'the baseline of the speed-ups')
  parser.add_argument('--threads', default='1,2')
  parser.add_argument('--kernels', default='xnnpack',
                      help='xnnpack, builtin or xnnpack,builtin')
  parser.add_argument('--runs', type=int, default=200)
  parser.add_argument('--warmup', type=int, default=20)
  parser.add_argument('--mobilenet', action='store_true',
                      help='build, convert and time a MobileNet-v1 with '
                      'sparse 1x1 convolutions (dense vs sparse storage)')
  parser.add_argument('--size', type=int, default=224)
  parser.add_argument('--width', type=float, default=1.0)
  parser.add_argument('--sparsity', type=float, default=0.9)
  parser.add_argument('--out', default='/tmp/tf_tickets_mobilenet')
  parser.add_argument('--report', help='an export\'s report.json: print the '
                      'size targets against it')
  parser.add_argument('--export', help='an export directory: time its sparse '
                      '.tflite files against the best dense conversion')
  parser.add_argument('--rounds', type=int, default=30)
  parser.add_argument('--per_round', type=int, default=100)
  parser.add_argument('--floor', action='store_true',
                      help='with --export: also time the cheapest models of '
                      'the same input and output (the per-call floor)')
  args = parser.parse_args(argv)
  if args.export:
    return compare_export(args.export, args.rounds, args.per_round,
                          args.floor)
  try:
    threads = tuple(int(t) for t in args.threads.split(',') if t)
    kernels = tuple(k for k in args.kernels.split(',') if k)
  except ValueError:
    parser.error('--threads: expected e.g. 1,2')
  if not threads or min(threads) < 1:
    parser.error('--threads: expected numbers >= 1, e.g. 1,2')
  if not kernels or set(kernels) - set(KERNELS):
    parser.error(f'--kernels: valid: {", ".join(KERNELS)}')
  if args.runs < 1 or args.warmup < 0:
    parser.error('--runs must be >= 1 and --warmup >= 0')
  if args.report:
    try:
      with open(args.report) as f:
        report = json.load(f)
      print(format_targets(size_targets(report)))
    except (OSError, ValueError, KeyError, TypeError) as e:
      parser.error(f'--report: cannot read {args.report} as an export '
                   f'report: {e!r}')
    if not (args.models or args.mobilenet):
      return 0
  info = None
  if args.mobilenet:
    if not 2 / 3 <= args.sparsity < 1:
      parser.error('--sparsity: XNNPack uses sparse kernels for 1x1 convs at '
                   'least 2/3 sparse; give a value in [0.667, 1)')
    paths, info = build_mobilenet(args.size, args.width, args.sparsity,
                                  args.out)
    files = list(paths.values()) + list(args.models)
  else:
    files = list(args.models)
    if not files:
      parser.error('give .tflite files, or --mobilenet')
  models = {}
  for path in files:
    try:
      with open(path, 'rb') as f:
        models[os.path.basename(path)] = f.read()
    except OSError as e:
      parser.error(f'cannot read {path}: {e}')
  flags = _cpu_flags()
  isa = ' '.join(f for f in ('sse4_2', 'avx', 'avx2', 'fma', 'avx512f',
                              'asimd', 'neon') if f in flags)
  print(f'interpreter: {interpreter.interpreter_name()}; CPU: {_cpu_name()} '
        f'({platform.machine()}, {os.cpu_count()} logical CPUs; ISA: {isa}); '
        f'{args.runs} interleaved rounds after {args.warmup} warm-up')
  if info:
    print(f'MobileNet-v1 {args.size}x{args.size}x3, width {args.width}: '
          f'{info["params"]:,d} parameters; {info["pruned_layers"]} 1x1 convs '
          f'({info["prunable"]:,d} weights, {info["flops_share"]:.0%} of the '
          f'multiply-adds) at sparsity {info["pruned_sparsity"]:.4f}; '
          f'tfmot PruneForLatencyOnXNNPack: {info["policy"]}')
  rows = benchmark(models, threads, kernels, args.runs, args.warmup)
  print(format_rows(rows))
  if args.mobilenet:
    sparse = [r for r in rows if r['model'] == 'mobilenet_sparse.tflite'
              and r['kernels'] == 'xnnpack' and 'speedup' in r]
    if sparse:
      same = all(r['bitwise_equal'] for r in sparse)
      avx = 'avx' in flags and platform.machine() in ('x86_64', 'AMD64',
                                                      'i686', 'x86')
      print('diagnosis: sparse vs dense outputs are '
            + ('bitwise identical -> XNNPack ran the same dense kernels for '
               'both (the sparse NCHW/SpMM path reorders sums)' if same else
               'different in the low bits -> XNNPack took a different '
               '(sparse NCHW) path for the sparse model'))
      if avx:
        print('diagnosis: this is an x86 CPU with AVX; XNNPack '
              '(src/xnnpack/hardware-config.h, xnn_is_chw_compatible_config) '
              'disables its NCHW/sparse kernels on such CPUs ("dense '
              'inference is expected to be faster than sparse"), so the '
              'sparsity hint the delegate sets for DENSIFY-fed weights is '
              'ignored and the weights are densified at load time')
  return 0


if __name__ == '__main__':
  sys.exit(main())
