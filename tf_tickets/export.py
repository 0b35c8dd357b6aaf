"""Edge export: SavedModel, sparse TFLite, quantised variants, C arrays.

    python -m tf_tickets.export --run_dir=RUN [--level=N] [--output_dir=OUT]
        [--quantize=none|dynamic|int8|float16 ...] [--c_array]

picks a run's final network (for a lottery run the sparsest finished level,
i.e. the lowest density in the levels' result.json, unless `--level` says
otherwise; a dense or sparse-training run has only `level_0`), strips the
prune wrappers (`tf_tickets.strip`) and writes into OUT (default
`RUN/export/level_N`; nothing else in the run directory is touched):

    saved_model/           TF SavedModel, signature `serving_default`:
                           pixels float32 (None, H, W, C) -> logits float32
                           (None, num_classes)
    float32_dense.tflite   float32, dense storage: the baseline every size
                           ratio is measured against
    float32.tflite         float32 with sparse weight storage
                           (`tf.lite.Optimize.EXPERIMENTAL_SPARSITY`)
    dynamic.tflite         --quantize=dynamic: int8 weights, float
                           activations (dynamic range), sparse storage
    int8.tflite            --quantize=int8: full integer, calibrated on the
                           first `calibration_examples` training images
                           (`data.calibration_images`), sparse storage
    float16.tflite         --quantize=float16: float16 weights, sparse storage
    *.cc / *.h             --c_array: TFLite Micro C arrays (see below)
    report.json            sizes, ratios, parity, sparsity (also printed)

Input contract (every artifact): float32 raw pixels in 0..255 with the
dataset's shape (H, W, C) - the models normalise in their first layer
('preprocess'), so an app feeds camera pixels directly - and float32 logits
out. The int8 model keeps float32 input and output as well (a QUANTIZE op at
the input and a DEQUANTIZE op at the output): one contract for every
artifact, and the quantisation parameters never leak into app code. Inside,
its input is quantised with the scale the calibration found (reported as
`int8_input_quantization`; for full-range images scale 1.0 and zero point
-128, i.e. q = pixel - 128).

Quantisation granularity: 'dynamic' and 'int8' quantise Dense
(FULLY_CONNECTED) kernels per tensor and convolutions per output channel
(see `convert`: per-channel scales cost 12 bytes per output unit, which is
15% of a 90%-sparse int8 LeNet-300-100).

Sparse storage: the converter stores a pruned kernel in TFLite's sparse
format (CSR-like dim metadata + the non-zero values) and inserts a DENSIFY
op in front of its user. It does so for float32, float16, dynamic-range
and int8 kernels. The report proves it: per artifact the number of
sparse-encoded tensors and DENSIFY ops, and the bytes against the dense
conversion.

TFLite Micro has no DENSIFY kernel, so a sparse-encoded model cannot run on
it. `--c_array` therefore embeds models with dense storage: the float32
baseline (`float32_dense.cc/.h`) and, with --quantize=int8,
`int8_dense.tflite` (`int8_dense.cc/.h`). TFLite Micro has no kernels for
dynamic-range (hybrid) or float16-weight models, so those get no C array.

Every export checks itself on the first `num_examples` test images
(fed as raw uint8 pixels cast to float32, while the Keras reference sees the
training pipeline's `data.eval_dataset` batches), see CHECKS:

* float models (float32, float32_dense, float16, the SavedModel, and the
  stripped network against the wrapped one): max |logit difference| <=
  rtol * max(1, max |reference logit|);
* quantised models (dynamic, int8): argmax agreement with the Keras model
  >= min_agreement and test accuracy >= Keras accuracy - max_accuracy_drop;
* kernel sparsity: every pruned weight is still exactly zero in the
  SavedModel's variables (which must equal the stripped kernels) and in every
  .tflite (sparse tensors are decoded from their sparsity parameters;
  quantised ones are dequantised).

A failed check raises `TicketsError` (the CLI prints one final line
`error: ...` and exits 1); the artifacts are then left in `OUT.failed/` for
inspection and OUT is not replaced.

The interpreter is LiteRT's (`ai_edge_litert.interpreter.Interpreter`,
`tf.lite.Interpreter` if LiteRT is not installed) with its default XNNPack
delegate. If the delegate refuses a model (LiteRT 2.3's XNNPack fails to
prepare FULLY_CONNECTED nodes fed by sparse int8 weights, for instance) the
model is checked on the builtin kernels and the report says so: an app must
then disable XNNPack for that model.

The training entrypoint exports at the end of a run when gin sets
`export.formats` (see `settings`).
"""

if __name__ == '__main__':
  # `python -m tf_tickets.export`: run the importable module, so that gin and
  # absl see a single copy of it (tf_tickets.experiment imports it too).
  from tf_tickets import export as _export_module  # pylint: disable=import-self
  _export_module.run()

import contextlib
import gzip
import io
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import warnings

from absl import app
from absl import flags
from absl import logging

import tf_tickets  # noqa: F401  (tf_keras before TensorFlow)
# pylint: disable=g-import-not-at-top,wrong-import-position
import gin
import numpy as np
import tensorflow as tf

from tf_tickets import data as data_lib
from tf_tickets import models
from tf_tickets import training
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.errors import ConfigError
from tf_tickets.errors import TicketsError
from tf_tickets.errors import first_line
from tf_tickets.keras import keras

QUANTIZATIONS = ('none', 'dynamic', 'int8', 'float16')
FORMATS = ('saved_model', 'tflite', 'c_array')
REPORT_FORMAT = 'tf_tickets.export/1'

# Self-check thresholds (see the module docstring).
CHECKS = {
    'float32': dict(rtol=1e-4),
    'float16': dict(rtol=1e-2),
    'dynamic': dict(min_agreement=0.95, max_accuracy_drop=0.02),
    'int8': dict(min_agreement=0.90, max_accuracy_drop=0.03),
}

# Size targets of issue 6: LeNet-300-100 at >= 90% sparsity.
TARGETS = (
    ('lenet_300_100', 0.9, 'float32.tflite', 0.16),
    ('lenet_300_100', 0.9, 'int8.tflite', 0.09),
)

_ARTIFACTS = {  # quantisation -> (file stem, check kind)
    'none': ('float32', 'float32'),
    'dynamic': ('dynamic', 'dynamic'),
    'int8': ('int8', 'int8'),
    'float16': ('float16', 'float16'),
}


# ------------------------------------------------------------------------------
# Settings (gin) and the hook the training entrypoint calls
# ------------------------------------------------------------------------------


def _as_tuple(value):
  """'a,b' / ['a', 'b'] / None -> ('a', 'b') / ('a', 'b') / ()."""
  if value is None:
    return ()
  if isinstance(value, str):
    return tuple(v.strip() for v in value.split(',') if v.strip())
  try:
    return tuple(value)
  except TypeError:
    return (value,)


def _unique_choices(items, choices, setting, what):
  """Validates names against `choices`; keeps first occurrences in order."""
  out = []
  for v in items:
    if v not in choices:
      raise ConfigError(setting, f'unknown {what} {v!r}; valid: '
                        + ', '.join(repr(c) for c in choices))
    if v not in out:
      out.append(v)
  return tuple(out)


def parse_quantize(values, setting='--quantize'):
  """Normalises quantisation names ('int8,float16' or a list); validates."""
  items = [v for value in _as_tuple(values) for v in _as_tuple(value)]
  return _unique_choices(items, QUANTIZATIONS, setting, 'quantisation') or (
      'none',)


def parse_formats(values, setting='export.formats'):
  return _unique_choices(_as_tuple(values), FORMATS, setting, 'format')


@gin.configurable('export')
def settings(formats=(), quantize=('none',)):
  """Export at the end of a training run (gin: `export.*`).

  Args:
    formats: () (no export, the default) or some of 'saved_model', 'tflite'
      and 'c_array'. The SavedModel is always written when anything is (the
      TFLite converter reads it); 'c_array' implies 'tflite'.
    quantize: quantised TFLite variants besides float32: 'none', 'dynamic',
      'int8', 'float16' (a list or a comma-separated string).

  Returns:
    (formats, quantize), validated.
  """
  return (parse_formats(formats, 'export.formats'),
          parse_quantize(quantize, 'export.quantize'))


def after_run(ctx):
  """Exports the run's final network if gin asks for it (`export.formats`).

  `experiment.run` calls this once its experiment has finished; `ctx` is its
  `experiment.Context`. Returns the report, or None when nothing is exported.
  """
  formats, quantize = settings()
  if not formats:
    return None
  return export_run(ctx.run_dir, data=ctx.data, formats=formats,
                    quantize=quantize, quiet=ctx.quiet,
                    quantize_setting='export.quantize')


# ------------------------------------------------------------------------------
# Run directories: levels and rebuilding the network
# ------------------------------------------------------------------------------


def finished_levels(run_dir):
  """{level: result dict} of the finished networks `RUN/level_<L>`."""
  out = {}
  if not os.path.isdir(run_dir):
    return out
  for name in os.listdir(run_dir):
    match = re.fullmatch(r'level_(\d+)', name)
    net_dir = os.path.join(run_dir, name)
    if not match or not training.is_finished(net_dir):
      continue
    try:
      out[int(match.group(1))] = training.read_json(
          os.path.join(net_dir, 'result.json'))
    except (OSError, ValueError):
      continue
  return out


def check_run_dir(run_dir, setting='--run_dir'):
  if not run_dir:
    raise ConfigError(setting, 'required: the directory of a training run '
                      '(what --output_dir of tf_tickets.train named)')
  if not os.path.isdir(run_dir):
    raise ConfigError(setting, f'{run_dir!r} does not exist or is not a '
                      'directory')
  if not os.path.isfile(os.path.join(run_dir, 'operative_config.gin')):
    raise ConfigError(setting, f'{run_dir!r} is not a tf_tickets run (no '
                      'operative_config.gin); give the --output_dir of a '
                      'tf_tickets.train run')
  if not finished_levels(run_dir):
    raise ConfigError(setting, f'{run_dir!r} holds no finished network (no '
                      'level_<N>/ with final/ and result.json); train it first')


def pick_level(run_dir, level=None, setting='--level'):
  """The level to export: `level`, or the finished one of lowest density."""
  levels = finished_levels(run_dir)
  valid = ', '.join(str(l) for l in sorted(levels)) or 'none'
  if level is None:
    return min(levels, key=lambda l: (float(levels[l].get('density', 1.0)),
                                      -l))
  if isinstance(level, str):
    try:
      level = int(level)
    except ValueError:
      raise ConfigError(setting, f'expected a level number, got {level!r}; '
                        f'finished levels: {valid}') from None
  if level not in levels:
    net_dir = os.path.join(run_dir, f'level_{level}')
    state = ('is not finished (no final/ and result.json yet)'
             if os.path.isdir(net_dir) else 'does not exist')
    raise ConfigError(setting, f'level {level} of {run_dir!r} {state}; '
                      f'finished levels: {valid}')
  return level


def _import_configurables():
  """Imports the modules whose gin configurables a run's config names."""
  # pylint: disable=unused-import
  from tf_tickets import experiment  # noqa: F401
  from tf_tickets import lottery  # noqa: F401
  for name in ('sparse_training', 'summaries'):
    try:
      __import__(f'tf_tickets.{name}')
    except Exception as e:  # pylint: disable=broad-except
      logging.warning('tf_tickets.%s not importable (%s); its settings in '
                      'the run config are ignored', name, e)


def load_run_config(run_dir, gin_params=()):
  """Parses `RUN/operative_config.gin` (+ overrides) into gin's config."""
  _import_configurables()
  path = os.path.join(run_dir, 'operative_config.gin')
  gin.clear_config()
  try:
    gin.parse_config_files_and_bindings([path], list(gin_params),
                                        skip_unknown=True,
                                        finalize_config=False)
  except (ValueError, SyntaxError, KeyError, ImportError, TypeError,
          NameError) as e:
    msg = str(e).strip().replace('\n', ' ')
    where = f'{path} with --gin_param {list(gin_params)}' if gin_params \
        else path
    raise ConfigError('--gin_param' if gin_params else '--run_dir',
                      f'cannot parse {where}: {msg}') from None


def _dense_layers(model, result):
  """Prunable layers the run left unwrapped (absent from layer_density)."""
  keys = set(result.get('layer_density') or {})
  if not keys:
    return ()
  wrapped = {k.split('/')[0] for k in keys}
  return tuple(l.name for l in model.layers
               if wrapper_lib.is_prunable(l) and l.name not in wrapped)


def load_network(run_dir, level, data, result=None):
  """Rebuilds the run's wrapped model (gin-configured) with level's weights."""
  if result is None:
    result = training.read_json(
        os.path.join(run_dir, f'level_{level}', 'result.json'))
  config = training.training_config()
  model = models.build_model(input_shape=data.input_shape,
                             num_classes=data.num_classes, mean=data.mean,
                             std=data.std, seed=config.seed)
  wrapped = wrapper_lib.wrap(model, dense_layers=_dense_layers(model, result))
  training.load_weights(wrapped, os.path.join(run_dir, f'level_{level}',
                                              'final'))
  return wrapped


# ------------------------------------------------------------------------------
# Conversion
# ------------------------------------------------------------------------------


@contextlib.contextmanager
def _stdout_to_stderr():
  """Sends C-level stdout (the converter's chatter) to stderr."""
  sys.stdout.flush()
  try:
    saved = os.dup(1)
  except OSError:
    yield
    return
  try:
    os.dup2(2, 1)
    yield
  finally:
    sys.stdout.flush()
    os.dup2(saved, 1)
    os.close(saved)


def save_saved_model(model, directory):
  """Writes `model` as a plain TF SavedModel with a raw-pixel signature.

  `serving_default`: `pixels` float32 (None, H, W, C) -> {'logits'}. The
  variables are tracked directly (not through Keras' SavedModel format, which
  traces every layer and is 4-5x slower to write); load it with
  `tf.saved_model.load`. `loaded.model_variables` lists the weights.
  """
  shape = [None] + [int(d) for d in model.input_shape[1:]]
  spec = tf.TensorSpec(shape, tf.float32, name='pixels')

  @tf.function(input_signature=[spec])
  def serve(pixels):
    return {'logits': model(pixels, training=False)}

  module = tf.Module()
  module.model_variables = list(model.weights)
  module.serve = serve
  tf.saved_model.save(module, directory,
                      signatures={'serving_default': serve})


def convert(saved_model_dir, quantization='none', sparse=True,
            calibration=None, setting='--quantize', dense_per_tensor=True):
  """Converts the SavedModel to TFLite bytes.

  Args:
    quantization: one of QUANTIZATIONS.
    sparse: add `Optimize.EXPERIMENTAL_SPARSITY` (sparse weight storage).
    calibration: float32 raw-pixel images (N, H, W, C), for 'int8'.
    dense_per_tensor: quantise Dense (FULLY_CONNECTED) kernels per tensor
      instead of per output unit ('dynamic' and 'int8'; convolutions stay
      per channel). A per-channel scale costs 12 bytes per output unit
      (float32 scale + int64 zero point) for the kernel and again for the
      bias, a large share of a sparse Dense layer: LeNet-300-100 at 90%
      sparsity, int8 + sparse: 101,032 bytes per channel, 85,776 per tensor,
      test accuracy 0.879 vs 0.8805 (2000 Fashion-MNIST test images).
  """
  converter = tf.lite.TFLiteConverter.from_saved_model(
      saved_model_dir, signature_keys=['serving_default'])
  opts = [] if quantization == 'none' else [tf.lite.Optimize.DEFAULT]
  if sparse:
    opts.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
  converter.optimizations = opts
  if quantization in ('dynamic', 'int8') and dense_per_tensor:
    # Private converter flag (TF >= 2.13); without it: per-channel scales.
    flag = '_experimental_disable_per_channel_quantization_for_dense_layers'
    setattr(converter, flag, True)
  if quantization == 'float16':
    converter.target_spec.supported_types = [tf.float16]
  elif quantization == 'int8':
    if calibration is None or not len(calibration):
      raise ValueError('int8 needs calibration images')
    images = np.asarray(calibration, np.float32)
    converter.representative_dataset = lambda: ([img[None]] for img in images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    # Input and output stay float32: see the module docstring.
  try:
    with warnings.catch_warnings(), _stdout_to_stderr():
      warnings.filterwarnings('ignore', message='.*Statistics for quantized')
      return converter.convert()
  except Exception as e:  # pylint: disable=broad-except
    msg = first_line(e, 400)
    raise TicketsError(f'{setting}: the TFLite converter cannot make the '
                       f'{quantization!r} variant of this network: '
                       f'{type(e).__name__}: {msg}') from None


# ------------------------------------------------------------------------------
# Interpreter
# ------------------------------------------------------------------------------


def interpreter_module():
  """(Interpreter class, OpResolverType, name): LiteRT, else tf.lite."""
  try:
    from ai_edge_litert import interpreter as litert
    return litert.Interpreter, litert.OpResolverType, 'ai_edge_litert'
  except ImportError:
    return (tf.lite.Interpreter, tf.lite.experimental.OpResolverType,
            'tf.lite')


def make_interpreter(content, xnnpack=True, num_threads=None):
  """An interpreter for TFLite bytes; `xnnpack=False`: builtin kernels only."""
  interpreter_cls, resolver, _ = interpreter_module()
  kind = (resolver.AUTO if xnnpack
          else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    return interpreter_cls(model_content=content, num_threads=num_threads,
                           experimental_op_resolver_type=kind)


def _invoke_all(content, images, xnnpack, batch_size):
  it = make_interpreter(content, xnnpack=xnnpack)
  inp = it.get_input_details()[0]
  out = it.get_output_details()[0]
  outputs, current = [], None
  for start in range(0, len(images), batch_size):
    x = np.asarray(images[start:start + batch_size], np.float32)
    if current != len(x):
      it.resize_tensor_input(inp['index'], [len(x)] + list(x.shape[1:]),
                             strict=False)
      it.allocate_tensors()
      current = len(x)
    it.set_tensor(inp['index'], x)
    it.invoke()
    outputs.append(np.array(it.get_tensor(out['index'])))
  return np.concatenate(outputs).astype(np.float32)


def run_tflite(content, images, batch_size=100):
  """Logits of a float-I/O model on `images`; (logits, runtime, note).

  Runs with the default XNNPack delegate; if the delegate refuses the model,
  with the builtin kernels (runtime 'builtin') and the delegate's error as
  note.
  """
  try:
    return _invoke_all(content, images, True, batch_size), 'xnnpack', None
  except (RuntimeError, ValueError) as e:
    note = first_line(e, 400)
  logits = _invoke_all(content, images, False, batch_size)
  return logits, 'builtin', note


def model_structure(content):
  """Ops, sparse tensors and constant kernels of TFLite bytes.

  Returns dict(ops=[op names], densify=int, sparse_tensors=int,
  constants=[(name, shape, dense float64 array)]) where sparse constants are
  decoded and quantised ones dequantised.
  """
  it = make_interpreter(content, xnnpack=False)
  it.allocate_tensors()
  ops = it._get_ops_details()  # pylint: disable=protected-access
  # Constants: op inputs that no op produces and that are not model inputs
  # (this also leaves out kernels' scratch tensors).
  consumed = {int(i) for op in ops for i in op['inputs'] if int(i) >= 0}
  produced = {int(i) for op in ops for i in op['outputs']}
  produced |= {int(d['index']) for d in it.get_input_details()}
  constants, sparse = [], 0
  for t in it.get_tensor_details():
    sp = t.get('sparsity_parameters') or {}
    if sp:
      sparse += 1
    index = int(t['index'])
    if index in produced or index not in consumed or len(t['shape']) < 2:
      continue
    if t['dtype'] not in (np.float32, np.float16, np.int8):
      continue
    try:
      raw = np.array(it.get_tensor(t['index']))
    except ValueError:
      continue
    shape = tuple(int(d) for d in t['shape'])
    dense = densify(raw, shape, sp) if sp else raw.reshape(shape)
    dense = _dequantize(dense, t)
    constants.append((t['name'], shape, dense, bool(sp)))
  names = [op['op_name'] for op in ops]
  return dict(ops=names, densify=names.count('DENSIFY'), sparse_tensors=sparse,
              constants=constants)


def _dequantize(values, detail):
  if values.dtype != np.int8:
    return values.astype(np.float64)
  q = detail.get('quantization_parameters') or {}
  scales = np.asarray(q.get('scales', []), np.float64)
  zeros = np.asarray(q.get('zero_points', []), np.float64)
  if scales.size == 0:
    return values.astype(np.float64)
  if scales.size > 1:
    axis = int(q.get('quantized_dimension', 0))
    shape = [1] * values.ndim
    shape[axis] = scales.size
    scales, zeros = scales.reshape(shape), zeros.reshape(shape)
  return (values.astype(np.float64) - zeros) * scales


def densify(values, shape, sparsity):
  """Decodes a TFLite sparse tensor (its stored values) to a dense array.

  `sparsity` is the interpreter's `sparsity_parameters`: `traversal_order`
  over the n dims plus k block dims (`block_map` says which dim each block
  dim splits) and per traversed dim a `dim_metadata` entry, DENSE
  (`dense_size`) or SPARSE_CSR (`array_segments`, `array_indices`). A dense
  level maps position p to p * size + i; a CSR level to
  segments[p] .. segments[p + 1] - 1 with coordinates from indices.
  """
  order = [int(d) for d in sparsity['traversal_order']]
  block_map = [int(d) for d in sparsity.get('block_map', [])]
  meta = sparsity['dim_metadata']
  n, k = len(shape), len(block_map)
  block = {}
  for j, d in enumerate(block_map):
    block[d] = int(meta[order.index(n + j)]['dense_size'])
  expanded = ([shape[i] // block.get(i, 1) for i in range(n)]
              + [block[d] for d in block_map])
  pos = np.zeros(1, np.int64)
  coords = np.zeros((1, n + k), np.int64)
  for level, d in enumerate(order):
    m = meta[level]
    if int(m['format']) == 0:  # DENSE
      size = int(m['dense_size'])
      steps = np.arange(size, dtype=np.int64)
      pos = (pos[:, None] * size + steps[None, :]).ravel()
      coords = np.repeat(coords, size, axis=0)
      coords[:, d] = np.tile(steps, len(coords) // size if size else 0)
    else:  # SPARSE_CSR
      segments = np.asarray(m['array_segments'], np.int64)
      indices = np.asarray(m['array_indices'], np.int64)
      starts = segments[pos]
      counts = segments[pos + 1] - starts
      offsets = (np.repeat(starts - np.cumsum(counts) + counts, counts)
                 + np.arange(int(counts.sum()), dtype=np.int64))
      coords = np.repeat(coords, counts, axis=0)
      coords[:, d] = indices[offsets]
      pos = offsets
  out = np.zeros(expanded, values.dtype)
  out[tuple(coords.T)] = np.asarray(values).ravel()[pos]
  if k:
    perm = []
    for i in range(n):
      perm.append(i)
      if i in block_map:
        perm.append(n + block_map.index(i))
    out = out.transpose(perm).reshape(shape)
  return out


# ------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------


def _reference_logits(model, x, y, batch_size=250):
  """Logits through the training pipeline's `data.eval_dataset` batches."""
  out = [model(xb, training=False).numpy()
         for xb, _ in data_lib.eval_dataset(x, y, batch_size=batch_size)]
  return np.concatenate(out).astype(np.float32)


def parity(reference, logits, labels, kind):
  """Parity figures of `logits` against `reference` and the check verdict."""
  ref_pred = reference.argmax(-1)
  pred = logits.argmax(-1)
  diff = float(np.max(np.abs(reference - logits))) if len(logits) else 0.0
  scale = max(1.0, float(np.max(np.abs(reference))) if len(logits) else 1.0)
  acc = float(np.mean(pred == labels))
  ref_acc = float(np.mean(ref_pred == labels))
  out = dict(kind=kind, examples=int(len(labels)), max_abs_diff=diff,
             rel_diff=diff / scale, agreement=float(np.mean(pred == ref_pred)),
             accuracy=acc, reference_accuracy=ref_acc)
  limits = CHECKS[kind]
  failures = []
  if 'rtol' in limits:
    out['tolerance'] = limits['rtol']
    if not out['rel_diff'] <= limits['rtol']:  # also catches NaN
      failures.append(f'max |logit diff| {diff:.3g} = {out["rel_diff"]:.3g} x '
                      f'max(1, max |logit|) exceeds {limits["rtol"]:g}')
  else:
    out['min_agreement'] = limits['min_agreement']
    out['max_accuracy_drop'] = limits['max_accuracy_drop']
    if not out['agreement'] >= limits['min_agreement']:
      failures.append(f'agreement with the Keras model {out["agreement"]:.4f} '
                      f'< {limits["min_agreement"]}')
    if not acc >= ref_acc - limits['max_accuracy_drop']:
      failures.append(f'accuracy {acc:.4f} is more than '
                      f'{limits["max_accuracy_drop"]} below the Keras '
                      f'model\'s {ref_acc:.4f}')
  out['passed'] = not failures
  out['failures'] = failures
  return out


def _tflite_layout(layer, kernel):
  """A Keras kernel in the layout TFLite stores it, or None if unknown."""
  if isinstance(layer, keras.layers.DepthwiseConv2D):
    kh, kw, c, m = kernel.shape
    return kernel.reshape(kh, kw, c * m)[None]
  if isinstance(layer, keras.layers.Dense):
    return kernel.T
  if (isinstance(layer, keras.layers.Conv2D)
      and not isinstance(layer, keras.layers.Conv2DTranspose)
      and kernel.ndim == 4):
    return kernel.transpose(3, 0, 1, 2)
  return None


def prunable_kernels(wrapped, stripped):
  """[(key, layer name, pruned mask in TFLite layout, stripped kernel)]."""
  out = []
  for key, (wr, i) in wrapper_lib.prunable_entries(wrapped).items():
    short = wrapper_lib.short_name(wr.prunable_weights[i])
    layer = stripped.get_layer(wr.layer.name)
    kernel = next(w for w in layer.weights
                  if wrapper_lib.short_name(w) == short).numpy()
    pruned = wr.masks[i].numpy() == 0
    out.append((key, layer, short, pruned, kernel))
  return out


def check_saved_model(directory, kernels, images, reference, labels):
  """Reloads the SavedModel: parity and kernel sparsity."""
  loaded = tf.saved_model.load(directory)
  fn = loaded.signatures['serving_default']
  logits = np.concatenate([
      fn(pixels=tf.constant(images[i:i + 250], tf.float32))['logits'].numpy()
      for i in range(0, len(images), 250)])
  result = parity(reference, logits, labels, 'float32')
  variables = {v.name: v.numpy() for v in loaded.model_variables}
  layers, failures = {}, []
  for key, layer, short, pruned, kernel in kernels:
    value = variables.get(f'{layer.name}/{short}:0')
    if value is None:
      failures.append(f'{key}: no variable {layer.name}/{short} in the '
                      'SavedModel')
      continue
    same = value.shape == kernel.shape and np.array_equal(value, kernel)
    zeros = bool(np.all(value[pruned] == 0)) if value.shape == pruned.shape \
        else False
    layers[key] = dict(nonzero=int(np.count_nonzero(value)), equal=same,
                       pruned_are_zero=zeros)
    if not (same and zeros):
      failures.append(f'{key}: the SavedModel variable differs from the '
                      'stripped kernel' if not same else
                      f'{key}: pruned weights are not zero in the SavedModel')
  result['layers'] = layers
  result['failures'] += failures
  result['passed'] = not result['failures']
  return result


def check_tflite_kernels(structure, kernels):
  """Finds each prunable kernel among the TFLite constants; checks zeros.

  A kernel is matched by its TFLite layout shape, preferring a tensor whose
  name mentions the layer and whose zeros include the pruned positions. The
  check: every pruned weight is zero (BN folding rescales kernels but keeps
  zeros). The reported non-zeros equal the active weights for float storage;
  quantisation may round a few more small weights to zero. A kernel that is
  not found is noted (not a failure).
  """
  constants = list(structure['constants'])
  used = set()
  layers, failures, notes = {}, [], []
  for key, layer, _, pruned, kernel in kernels:
    expected = _tflite_layout(layer, pruned)
    if expected is None:
      notes.append(f'{key}: {type(layer).__name__} kernels are not checked')
      continue
    shape = expected.shape
    candidates = [j for j, c in enumerate(constants)
                  if j not in used and c[1] == shape]
    named = [j for j in candidates
             if re.search(rf'(^|[/;]){re.escape(layer.name)}/',
                          constants[j][0])]
    zero_ok = [j for j in candidates if np.all(constants[j][2][expected] == 0)]
    pick = ([j for j in named if j in zero_ok] or zero_ok or named
            or candidates)
    if not pick:
      notes.append(f'{key}: no constant of shape {shape} in the model')
      continue
    j = pick[0]
    used.add(j)
    name, _, value, is_sparse = constants[j]
    zeros_ok = bool(np.all(value[expected] == 0))
    layers[key] = dict(nonzero=int(np.count_nonzero(value)),
                       storage='sparse' if is_sparse else 'dense',
                       pruned_are_zero=zeros_ok, tensor=name)
    if not zeros_ok:
      failures.append(f'{key}: {int(np.count_nonzero(value[expected]))} '
                      'pruned weights are not zero in the .tflite')
  return layers, failures, notes


# ------------------------------------------------------------------------------
# C arrays (TFLite Micro)
# ------------------------------------------------------------------------------


def c_array(content, symbol, header, comment=''):
  """(`.cc` text, `.h` text): `xxd -i`-style array, 16-byte aligned."""
  if not re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*', symbol):
    raise ValueError(f'not a C identifier: {symbol!r}')
  guard = re.sub(r'[^A-Za-z0-9]', '_', header).upper() + '_'
  body = '\n'.join('  ' + ', '.join(f'0x{b:02x}' for b in content[i:i + 12])
                   + ','
                   for i in range(0, len(content), 12))
  lead = ''.join(f'// {line}\n' for line in comment.splitlines())
  cc = (f'{lead}#include "{header}"\n\n'
        f'alignas(16) const unsigned char {symbol}[] = {{\n{body}\n}};\n'
        f'const unsigned int {symbol}_len = {len(content)};\n')
  h = (f'{lead}#ifndef {guard}\n#define {guard}\n\n'
       f'extern const unsigned char {symbol}[];\n'
       f'extern const unsigned int {symbol}_len;\n\n#endif  // {guard}\n')
  return cc, h


def parse_c_array(text):
  """The bytes of a `c_array` .cc text (for tests and tools)."""
  body = text[text.index('{') + 1:text.index('}')]
  return bytes(int(v, 16) for v in re.findall(r'0x([0-9a-fA-F]{2})', body))


# ------------------------------------------------------------------------------
# Export
# ------------------------------------------------------------------------------


def _gzip_size(content):
  """Bytes after `gzip -6` (the gzip tool's default level; -9 is ~10x slower
  on float weights for a fraction of a percent)."""
  return len(gzip.compress(content, compresslevel=6, mtime=0))


def _dir_sizes(directory):
  total = 0
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w') as tar:
    for root, _, files in sorted(os.walk(directory)):
      for f in sorted(files):
        path = os.path.join(root, f)
        total += os.path.getsize(path)
        tar.add(path, arcname=os.path.relpath(path, directory))
  return total, _gzip_size(buf.getvalue())


def _prepare_output(output_dir, run_dir=None, setting='--output_dir'):
  """Validates OUT; returns a fresh temporary directory beside it."""
  check_output_dir(output_dir, run_dir, setting)
  out = os.path.abspath(output_dir)
  parent = os.path.dirname(out)
  os.makedirs(parent, exist_ok=True)
  return tempfile.mkdtemp(dir=parent, prefix='.tmp-export-')


def check_output_dir(output_dir, run_dir=None, setting='--output_dir'):
  """Refuses an OUT that is (or holds) the run, or holds other files."""
  out = os.path.abspath(output_dir)
  if run_dir is not None:
    run = os.path.abspath(run_dir)
    if out == run or run.startswith(out + os.sep):
      raise ConfigError(setting, f'{output_dir!r} is the run directory or '
                        'contains it; export into a new directory (default '
                        'RUN/export/level_<N>)')
  if os.path.exists(out):
    if not os.path.isdir(out):
      raise ConfigError(setting, f'{output_dir!r} exists and is not a '
                        'directory')
    if os.listdir(out) and not _is_export_dir(out):
      raise ConfigError(setting, f'{output_dir!r} is not empty and holds no '
                        'earlier export (report.json); use a new or empty '
                        'directory')


def _is_export_dir(path):
  try:
    with open(os.path.join(path, 'report.json')) as f:
      return json.load(f).get('format') == REPORT_FORMAT
  except (OSError, ValueError, AttributeError):
    return False


def _artifact(name, path, content=None, dense_bytes=None, dense_gzip=None):
  if content is not None:
    size, gz = len(content), _gzip_size(content)
  else:
    size, gz = _dir_sizes(path)
  entry = dict(name=name, bytes=size, gzip_bytes=gz)
  if dense_bytes:
    entry['ratio_to_dense'] = size / dense_bytes
    entry['gzip_ratio_to_dense'] = gz / dense_gzip
  return entry


def export_network(model, data, output_dir, quantize=('none',),
                   formats=('saved_model', 'tflite'), num_examples=500,
                   calibration_examples=300, source=None, run_dir=None,
                   quantize_setting='--quantize', quiet=False):
  """Exports a wrapped (or plain) tf_keras model; returns the report dict.

  Args:
    model: the network, as training holds it (TicketWrappers) or plain.
    data: a `data.Data` (test images for the checks, training images for
      int8 calibration).
    output_dir: OUT; written atomically (a temporary directory renamed into
      place once every check passed; `OUT.failed/` otherwise).
    quantize: quantised variants besides float32 (see QUANTIZATIONS).
    formats: see `settings`; the CLI uses ('saved_model', 'tflite') plus
      'c_array' with --c_array.
    num_examples: test images of the self-checks.
    calibration_examples: training images that calibrate int8.
    source: dict describing where the network came from (run, level, ...).
    run_dir: the run directory, which OUT must not be or contain.
  """
  quantize = parse_quantize(quantize, quantize_setting)
  formats = parse_formats(formats)
  want_tflite = 'tflite' in formats or 'c_array' in formats
  tmp = _prepare_output(output_dir, run_dir)
  try:
    report = _export_into(tmp, model, data, quantize, formats, want_tflite,
                          num_examples, calibration_examples, source or {},
                          quantize_setting)
    report['output_dir'] = os.path.abspath(output_dir)
    training.atomic_write_text(os.path.join(tmp, 'report.json'),
                               json.dumps(report, indent=1, sort_keys=True))
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  out = os.path.abspath(output_dir)
  if not report['passed']:
    failed = out + '.failed'
    shutil.rmtree(failed, ignore_errors=True)
    os.replace(tmp, failed)
    if not quiet:
      print(format_report(report), flush=True)
    raise TicketsError('export check failed: ' + '; '.join(report['failures'])
                       + f' (artifacts and report.json left in {failed})')
  if os.path.exists(out):
    shutil.rmtree(out)
  os.replace(tmp, out)
  print(f'export: {out}' if quiet else format_report(report), flush=True)
  return report


def _export_into(out, model, data, quantize, formats, want_tflite,
                 num_examples, calibration_examples, source, setting):
  has_wrappers = bool(wrapper_lib.wrappers(model))
  stripped = wrapper_lib.strip(model) if has_wrappers else model
  x = data.x_test[:num_examples]
  y = data.y_test[:num_examples].astype(np.int64)
  pixels = x.astype(np.float32)  # raw uint8 pixels as float: the contract
  reference = _reference_logits(stripped, x, y)
  failures, notes, artifacts = [], [], []
  checks = {}
  sparsity = wrapper_lib.sparsity_report(model) if has_wrappers else None
  kernels = prunable_kernels(model, stripped) if has_wrappers else []
  if has_wrappers:
    checks['strip'] = parity(reference, _reference_logits(model, x, y), y,
                             'float32')
    failures += [f'stripped vs wrapped model: {f}'
                 for f in checks['strip']['failures']]

  logging.info('writing the SavedModel')
  sm_dir = os.path.join(out, 'saved_model')
  save_saved_model(stripped, sm_dir)
  sm = check_saved_model(sm_dir, kernels, pixels, reference, y)
  failures += [f'saved_model: {f}' for f in sm['failures']]

  tflite = {}
  dense_bytes = dense_gzip = None
  if want_tflite:
    variants = [('float32_dense', 'none', False, 'float32')]
    for q in ('none',) + tuple(v for v in quantize if v != 'none'):
      stem, kind = _ARTIFACTS[q]
      variants.append((stem, q, True, kind))
    if 'c_array' in formats and 'int8' in quantize:
      variants.append(('int8_dense', 'int8', False, 'int8'))
    calibration = (data_lib.calibration_images(data, calibration_examples)
                   if 'int8' in quantize else None)
    for stem, q, sparse, kind in variants:
      logging.info('converting %s', stem)
      content = convert(sm_dir, q, sparse, calibration, setting)
      with open(os.path.join(out, stem + '.tflite'), 'wb') as f:
        f.write(content)
      tflite[stem] = content
      if stem == 'float32_dense':
        dense_bytes, dense_gzip = len(content), _gzip_size(content)
      entry = _artifact(stem + '.tflite', None, content, dense_bytes,
                        dense_gzip)
      entry.update(kind='tflite', quantization=q,
                   storage='sparse' if sparse else 'dense')
      logits, runtime, note = run_tflite(content, pixels)
      entry['runtime'] = runtime
      if note:
        entry['xnnpack_error'] = note
        notes.append(f'{stem}.tflite: the XNNPack delegate refused it '
                     f'({note}); checked on the builtin kernels - an app must '
                     'disable XNNPack for it')
      entry['parity'] = parity(reference, logits, y, kind)
      failures += [f'{stem}.tflite: {f}' for f in entry['parity']['failures']]
      structure = model_structure(content)
      entry['ops'] = sorted(set(structure['ops']))
      entry['densify_ops'] = structure['densify']
      entry['sparse_tensors'] = structure['sparse_tensors']
      layers, bad, layer_notes = check_tflite_kernels(structure, kernels)
      entry['layers'] = layers
      failures += [f'{stem}.tflite: {f}' for f in bad]
      notes += [f'{stem}.tflite: {n}' for n in layer_notes]
      if q == 'int8':
        entry['int8_input_quantization'] = _int8_input_quantization(content)
      artifacts.append(entry)

  sm_entry = _artifact('saved_model/', sm_dir, None, dense_bytes, dense_gzip)
  sm_entry.update(kind='saved_model', storage='dense', runtime='tensorflow',
                  parity={k: v for k, v in sm.items() if k != 'layers'},
                  layers=sm['layers'])
  artifacts.insert(0, sm_entry)

  if 'c_array' in formats:
    for stem in ('float32_dense', 'int8_dense'):
      if stem not in tflite:
        continue
      symbol = 'g_' + re.sub(r'\W', '_', stem) + '_model'
      comment = (f'{stem}.tflite ({len(tflite[stem])} bytes) as a C array for '
                 'TFLite Micro; written by tf_tickets.export.\n'
                 'Input: float32 raw pixels 0..255, shape (1, '
                 + ', '.join(str(d) for d in data.input_shape)
                 + '); output: float32 logits.')
      cc, h = c_array(tflite[stem], symbol, stem + '.h', comment)
      with open(os.path.join(out, stem + '.cc'), 'w') as f:
        f.write(cc)
      with open(os.path.join(out, stem + '.h'), 'w') as f:
        f.write(h)
      artifacts.append(dict(name=stem + '.cc', kind='c_array',
                            embeds=stem + '.tflite', symbol=symbol,
                            bytes=len(cc.encode()),
                            array_bytes=len(tflite[stem])))

  if not ('saved_model' in formats or want_tflite):
    notes.append('no formats requested; only the SavedModel was written')

  report = dict(
      format=REPORT_FORMAT, source=source, model=stripped.name,
      dataset=data.name, input=dict(name='pixels', dtype='float32',
                                    shape=[None] + list(data.input_shape),
                                    range='raw pixels 0..255'),
      output=dict(name='logits', dtype='float32',
                  shape=[None, data.num_classes]),
      quantize=list(quantize), formats=list(formats),
      dense_kernels_per_tensor=True,
      interpreter=interpreter_module()[2], checks_config=CHECKS,
      keras_test_accuracy=float(np.mean(reference.argmax(-1) == y)),
      check_examples=int(len(y)), artifacts=artifacts, checks=checks,
      sparsity=_jsonable(sparsity), notes=notes, failures=failures,
      passed=not failures)
  report['targets'] = _targets(report)
  return report


def _int8_input_quantization(content):
  it = make_interpreter(content, xnnpack=False)
  for t in it.get_tensor_details():
    if t['dtype'] == np.int8 and t['name'] == 'tfl.quantize':
      scale, zero = t['quantization']
      return dict(scale=float(scale), zero_point=int(zero))
  return None


def _targets(report):
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


def _jsonable(value):
  if isinstance(value, dict):
    return {k: _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, np.generic):
    return value.item()
  return value


def export_run(run_dir, level=None, output_dir=None, quantize=('none',),
               formats=('saved_model', 'tflite'), data=None, gin_params=(),
               num_examples=500, calibration_examples=300, quiet=False,
               quantize_setting='--quantize'):
  """Exports a run's network (see the module docstring); returns the report.

  With `data` None the run's gin config (operative_config.gin plus
  `gin_params`) is parsed and the dataset loaded; otherwise the current gin
  config is used (the training entrypoint's hook).
  """
  check_run_dir(run_dir)
  quantize = parse_quantize(quantize, quantize_setting)
  formats = parse_formats(formats)
  level = pick_level(run_dir, level)
  result = finished_levels(run_dir)[level]
  if output_dir is None:
    output_dir = os.path.join(run_dir, 'export', f'level_{level}')
  check_output_dir(output_dir, run_dir)
  if data is None:
    load_run_config(run_dir, gin_params)
    try:
      data = data_lib.load_dataset()
    except ConfigError as e:
      # gin appends a line naming the configurable; keep the message only.
      message = str(e).strip().splitlines()[0].split(': ', 1)[-1]
      raise ConfigError(e.setting, message + ' (a setting of the run; '
                        f'override it with --gin_param="{e.setting} = ..." '
                        'if the data moved)') from None
  model = load_network(run_dir, level, data, result)
  source = dict(run_dir=os.path.abspath(run_dir), level=level,
                density=result.get('density'),
                test_accuracy=result.get('test_accuracy'),
                branch=result.get('branch'), method=result.get('method'))
  return export_network(model, data, output_dir, quantize=quantize,
                        formats=formats, num_examples=num_examples,
                        calibration_examples=calibration_examples,
                        source=source, run_dir=run_dir,
                        quantize_setting=quantize_setting, quiet=quiet)


# ------------------------------------------------------------------------------
# The readable report
# ------------------------------------------------------------------------------


def _parity_text(p):
  if not p:
    return ''
  if 'tolerance' in p:
    text = f'rel|d| {p["rel_diff"]:.1e} <= {p["tolerance"]:.0e}'
  else:
    text = (f'agree {p["agreement"]:.3f} >= {p["min_agreement"]}, '
            f'acc {p["accuracy"] - p["reference_accuracy"]:+.3f}')
  return text + ('' if p['passed'] else '  FAIL')


def format_report(report):
  """The report as readable tables."""
  src = report.get('source') or {}
  sp = report.get('sparsity') or {}
  head = f'export of {report["model"]} ({report["dataset"]})'
  if src.get('run_dir'):
    head += f' from {src["run_dir"]} level {src["level"]}'
  if sp:
    head += (f': density {sp["density"]:.4f} (sparsity {sp["sparsity"]:.4f}, '
             f'{sp["active"]} of {sp["params"]} prunable weights)')
  lines = [head,
           'input: pixels float32 (None, '
           + ', '.join(str(d) for d in report['input']['shape'][1:])
           + ') raw 0..255; output: logits float32; checks on '
           f'{report["check_examples"]} test images (Keras accuracy '
           f'{report["keras_test_accuracy"]:.4f}); interpreter: '
           f'{report["interpreter"]}', '']
  lines.append(f'{"artifact":22s} {"storage":7s} {"bytes":>11s} '
               f'{"gzipped":>11s} {"x dense":>8s} {"x gz":>6s} '
               f'{"sparse":>6s} {"acc":>6s} {"runtime":8s} parity')
  for a in report['artifacts']:
    if a['kind'] == 'c_array':
      lines.append(f'{a["name"]:22s} {"C":7s} {a["bytes"]:11,d} '
                   f'{"":>11s} {"":>8s} {"":>6s} {"":>6s} {"":>6s} '
                   f'{"":8s} embeds {a["embeds"]} ({a["array_bytes"]:,d} '
                   'bytes)')
      continue
    p = a.get('parity') or {}
    ratio = f'{a["ratio_to_dense"]:.4f}' if 'ratio_to_dense' in a else '-'
    gz = f'{a["gzip_ratio_to_dense"]:.3f}' if 'gzip_ratio_to_dense' in a \
        else '-'
    sparse = str(a.get('sparse_tensors', '-'))
    acc = f'{p["accuracy"]:.4f}' if p else ''
    lines.append(f'{a["name"]:22s} {a.get("storage", ""):7s} '
                 f'{a["bytes"]:11,d} {a["gzip_bytes"]:11,d} {ratio:>8s} '
                 f'{gz:>6s} {sparse:>6s} {acc:>6s} {a.get("runtime", ""):8s} '
                 f'{_parity_text(p)}')
  if report.get('sparsity'):
    tfl = [a for a in report['artifacts'] if a['kind'] == 'tflite']
    lines += ['', 'kernel sparsity (non-zeros; s = sparse-encoded, d = dense; '
              '! = a pruned weight is not zero):']
    cols = ['saved_model'] + [a['name'].replace('.tflite', '') for a in tfl]
    lines.append(f'{"weight":26s} {"shape":>18s} {"params":>9s} '
                 f'{"active":>8s} {"sparsity":>8s} '
                 + ' '.join(f'{c[:13]:>13s}' for c in cols))
    sm = report['artifacts'][0].get('layers', {})
    for key, r in report['sparsity']['layers'].items():
      cells = []
      s = sm.get(key)
      cells.append(f'{s["nonzero"]}{"" if s["pruned_are_zero"] else "!"}'
                   if s else '-')
      for a in tfl:
        t = a.get('layers', {}).get(key)
        cells.append(f'{t["nonzero"]}{t["storage"][0]}'
                     f'{"" if t["pruned_are_zero"] else "!"}' if t else '-')
      lines.append(f'{key[:26]:26s} {str(tuple(r["shape"])):>18s} '
                   f'{r["params"]:9d} {r["active"]:8d} {r["sparsity"]:8.4f} '
                   + ' '.join(f'{c:>13s}' for c in cells))
  for t in report.get('targets', []):
    ratio = f'{t["ratio"]:.4f}' if 'ratio' in t else '-'
    lines.append(f'target: {t["model"]} at sparsity >= {t["at_sparsity"]}: '
                 f'{t["artifact"]} <= {t["limit"]} x dense: {ratio} '
                 f'-> {t["status"]}')
  for a in report['artifacts']:
    q = a.get('int8_input_quantization')
    if q:
      lines.append(f'{a["name"]}: float32 I/O; input quantised inside with '
                   f'scale {q["scale"]:.6g}, zero point {q["zero_point"]} '
                   f'(q = pixel / scale + zero point)')
  for n in report.get('notes', []):
    lines.append(f'note: {n}')
  for f in report.get('failures', []):
    lines.append(f'FAILED: {f}')
  lines.append(f'export {"passed" if report["passed"] else "FAILED"}: '
               f'{report.get("output_dir", "")}')
  return '\n'.join(lines)


# ------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------

FLAGS = flags.FLAGS


def _define_flags():
  """Defines the CLI's flags (on use, and only those not yet defined: the
  training entrypoint, which imports this module, defines --gin_param,
  --output_dir and --quiet with the same types)."""
  defs = (
      (flags.DEFINE_string, 'run_dir', None,
       'directory of a tf_tickets.train run.'),
      (flags.DEFINE_string, 'level', None,
       'level to export (default: the finished level of lowest density; '
       'level 0 for dense and sparse training runs).'),
      (flags.DEFINE_string, 'output_dir', None,
       'export directory (default RUN/export/level_<N>).'),
      (flags.DEFINE_multi_string, 'quantize', [],
       'quantised variants: none, dynamic, int8, float16 (repeat the flag or '
       'use commas).'),
      (flags.DEFINE_bool, 'c_array', False,
       'also write TFLite Micro C arrays (float32 and, with int8, int8 - '
       'dense storage).'),
      (flags.DEFINE_multi_string, 'gin_param', [],
       'overrides of the run\'s config, e.g. '
       '"dataset.idx_dir=\'/data/mnist\'" when the data moved.'),
      (flags.DEFINE_integer, 'num_examples', 500,
       'test images of the self-checks.'),
      (flags.DEFINE_integer, 'calibration_examples', 300,
       'training images that calibrate int8.'),
      (flags.DEFINE_bool, 'quiet', False, 'warnings only; no report table.'),
  )
  for define, name, default, help_text in defs:
    if name not in FLAGS:
      define(name, default, help_text)


def main(argv):
  if FLAGS.quiet:
    logging.set_verbosity(logging.WARNING)
  tf.get_logger().setLevel('ERROR')
  logging.get_absl_logger().addFilter(
      lambda record: 'functional_saver' not in record.pathname)
  try:
    if len(argv) > 1:
      raise ConfigError('command line', f'unexpected arguments {argv[1:]}; '
                        'use --run_dir=...')
    if FLAGS.num_examples < 1:
      raise ConfigError('--num_examples', 'must be >= 1')
    if FLAGS.calibration_examples < 1:
      raise ConfigError('--calibration_examples', 'must be >= 1')
    quantize = parse_quantize(FLAGS.quantize, '--quantize')
    check_run_dir(FLAGS.run_dir)
    level = pick_level(FLAGS.run_dir, FLAGS.level)
    formats = ('saved_model', 'tflite') + (('c_array',) if FLAGS.c_array
                                            else ())
    export_run(FLAGS.run_dir, level=level, output_dir=FLAGS.output_dir,
               quantize=quantize, formats=formats, gin_params=FLAGS.gin_param,
               num_examples=FLAGS.num_examples,
               calibration_examples=FLAGS.calibration_examples,
               quiet=FLAGS.quiet)
  except TicketsError as e:
    sys.stdout.flush()
    sys.stderr.flush()
    # One line, even when gin appended "In call to configurable ..." lines.
    text = ' '.join(line.strip() for line in str(e).splitlines())
    print(f'error: {text}', file=sys.stderr, flush=True)
    sys.exit(1)


def run():
  """The CLI (`python -m tf_tickets.export`; see the top of this file)."""
  _define_flags()
  app.run(main)
