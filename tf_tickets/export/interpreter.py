"""Running .tflite files on LiteRT (`ai_edge_litert`), as an app does.

Every written .tflite is checked the way an app loads it:
`ai_edge_litert.interpreter.Interpreter(model_path=...)` with its defaults
(the default op resolver, which applies the XNNPack delegate),
`allocate_tensors()` and `invoke()` at the file's own input shape, then the
parity images in batches. A file that fails with the defaults - it does
not load, or its outputs fail the parity check - is tried with the next
runtime option of RUNTIMES; the report names the option each file needs,
and an export whose file runs right under no option fails.

Why a file may need an option: LiteRT's XNNPack delegate densifies a
sparse kernel (the input of a DENSIFY op) when it takes the graph over, but
its quantised kernels - FULLY_CONNECTED in 'dynamic' and 'int8', CONV_2D in
'dynamic' - take their int8 weights from the DENSIFY op's output tensor,
which holds no data at that point (ai-edge-litert 2.3;
`VisitFullyConnectedNode` in LiteRT's xnnpack_delegate.cc). Defining the
node fails, the delegate "failed to prepare" and `allocate_tensors()`
raises. Per-tensor and per-channel scales fail alike; float32 and float16
kernels stored sparse and int8 kernels stored dense are delegated. Such a
file runs on TFLite's builtin kernels (RUNTIMES 'builtin').

Wrong outputs: kernels stored in 1x16 blocks (block masks, no DENSIFY) in a
'dynamic' file load under XNNPack, but for a 784-2048-2048-10 MLP the
logits were off by about 2e4 (right on the builtin kernels, off by 0.06
from float32); LeNet-300-100 in the same format was right. The parity
check decides per file. For that model the builtin run after the XNNPack
one also crashed the process (a segmentation fault in allocate_tensors):
every check therefore runs LiteRT in a child process (`_run_isolated`), so
a runtime that crashes is one more refused option, not a dead export.
"""
import os
import re
import subprocess
import sys
import tempfile
import warnings

import numpy as np

from tf_tickets.errors import TicketsError
from tf_tickets.errors import first_line

# Runtime options in the order they are tried: name -> (the keyword
# arguments of `Interpreter` besides model_path, as an app writes them;
# the kernels that run).
RUNTIMES = {
    'default': ('', 'xnnpack'),
    'builtin': ('experimental_op_resolver_type='
                'OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES', 'builtin'),
}


def litert():
  """LiteRT's `ai_edge_litert.interpreter` module (a core dependency)."""
  try:
    # pylint: disable-next=g-import-not-at-top
    from ai_edge_litert import interpreter as module
  except ImportError as e:
    raise TicketsError('the export checks its .tflite files on LiteRT, which '
                       f'does not import ({e}); install it with '
                       '`pip install ai-edge-litert`') from None
  return module


def interpreter_name():
  """'ai_edge_litert <version>' of the interpreter the checks use."""
  module = litert()
  try:
    # pylint: disable-next=g-import-not-at-top
    from importlib import metadata
    return f'ai_edge_litert {metadata.version("ai-edge-litert")}'
  except Exception:  # pylint: disable=broad-except
    return 'ai_edge_litert ' + getattr(module, '__version__', '')


def runtime_kwargs(runtime):
  """The `Interpreter` keyword arguments of a RUNTIMES name."""
  if runtime == 'default':
    return {}
  if runtime == 'builtin':
    resolver = litert().OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return dict(experimental_op_resolver_type=resolver)
  raise ValueError(f'unknown runtime {runtime!r}; valid: {list(RUNTIMES)}')


def make_interpreter(model, runtime='default', threads=None):
  """A LiteRT interpreter of a .tflite path (str) or its bytes (`threads`:
  LiteRT's default when None)."""
  kwargs = runtime_kwargs(runtime)
  if threads is not None:
    kwargs['num_threads'] = int(threads)
  if isinstance(model, (bytes, bytearray)):
    kwargs['model_content'] = bytes(model)
  else:
    kwargs['model_path'] = str(model)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    return litert().Interpreter(**kwargs)


def _logits(model, images, runtime, batch_size):
  """Loads `model` as an app does, invokes it once at its own input shape,
  then returns its logits on `images`."""
  it = make_interpreter(model, runtime)
  it.allocate_tensors()
  inp = it.get_input_details()[0]
  out = it.get_output_details()[0]
  dtype = inp['dtype']  # float32 pixels, or e.g. int32 token ids
  first = np.asarray(images[:1], dtype)
  if list(inp['shape']) == list(first.shape):
    it.set_tensor(inp['index'], first)
  it.invoke()
  outputs, current = [], None
  for start in range(0, len(images), batch_size):
    x = np.asarray(images[start:start + batch_size], dtype)
    if current != len(x):
      it.resize_tensor_input(inp['index'], [len(x)] + list(x.shape[1:]),
                             strict=False)
      it.allocate_tensors()
      current = len(x)
    it.set_tensor(inp['index'], x)
    it.invoke()
    outputs.append(np.array(it.get_tensor(out['index'])))
  return np.concatenate(outputs).astype(np.float32)


def _run_isolated(model, images, runtime, batch_size):
  """`_logits` in a child process that imports LiteRT only (this module run
  as a script); a crash of the runtime raises RuntimeError."""
  with tempfile.TemporaryDirectory() as tmp:
    if isinstance(model, (bytes, bytearray)):
      path = os.path.join(tmp, 'model.tflite')
      with open(path, 'wb') as f:
        f.write(model)
    else:
      path = os.path.abspath(str(model))
    np.save(os.path.join(tmp, 'images.npy'), np.asarray(images))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path
                                                      if p))
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), path, runtime, tmp,
         str(batch_size)], env=env, capture_output=True, text=True,
        timeout=1800, check=False)
    out = os.path.join(tmp, 'logits.npy')
    if proc.returncode == 0 and os.path.exists(out):
      return np.load(out)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    if proc.returncode < 0:
      raise RuntimeError(f'LiteRT crashed (signal {-proc.returncode}) '
                         f'under the {runtime!r} runtime')
    raise RuntimeError(lines[-1] if lines else
                       f'LiteRT exited with status {proc.returncode}')


def run_tflite(model, images, batch_size=1, check=None):
  """Logits of a float-I/O .tflite (path or bytes) on `images` (one image
  per invoke by default, as an app runs it: XNNPack's quantised kernels may
  round a batch differently), under the
  first RUNTIMES option it runs with (and, with `check`, computes right
  under: `check(logits)` returns None, or why the logits are wrong), each
  tried in a child process.

  Returns (logits, runtime, errors): `runtime` the RUNTIMES name that ran
  (None, and logits None, if none did; the last that ran if `check`
  refused every one) and `errors` {runtime: first line of the error} of
  the options that failed before it.
  """
  errors, last = {}, (None, None)
  for runtime in RUNTIMES:
    try:
      logits = _run_isolated(model, images, runtime, batch_size)
    except (RuntimeError, ValueError) as e:
      # LiteRT runs two messages together: '... node #4Node number 8 ...'.
      errors[runtime] = re.sub(r'(#\d+)(Node number)', r'\1; \2',
                               first_line(e, 400))
      continue
    wrong = check(logits) if check is not None else None
    if wrong is None:
      return logits, runtime, errors
    errors[runtime] = f'wrong outputs: {wrong}'
    last = (logits, runtime)
  return last[0], last[1], errors


def int8_input_quantization(model):
  """{scale, zero_point} of an int8 model's input QUANTIZE op, or None."""
  it = make_interpreter(model, 'builtin')
  for t in it.get_tensor_details():
    if t['dtype'] == np.int8 and t['name'] == 'tfl.quantize':
      scale, zero = t['quantization']
      return dict(scale=float(scale), zero_point=int(zero))
  return None


if __name__ == '__main__':  # the child process of `_run_isolated`
  _path, _runtime, _tmp, _batch = sys.argv[1:5]
  try:
    _out = _logits(_path, np.load(os.path.join(_tmp, 'images.npy')),
                   _runtime, int(_batch))
  except (RuntimeError, ValueError) as _e:
    print(first_line(_e, 400), file=sys.stderr)
    sys.exit(1)
  np.save(os.path.join(_tmp, 'logits.npy'), _out)
