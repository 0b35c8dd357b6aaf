"""Running TFLite bytes: LiteRT's interpreter (tf.lite's without LiteRT).

The default op resolver applies the XNNPack delegate, as apps do. If the
delegate refuses a model (LiteRT 2.3's XNNPack fails to prepare
FULLY_CONNECTED nodes fed by sparse int8 weights, for instance), the model
runs on the builtin kernels and the caller gets the delegate's error.
"""
import warnings

import numpy as np
import tensorflow as tf

from tf_tickets.errors import first_line


def interpreter_module():
  """(Interpreter class, OpResolverType, name): LiteRT, else tf.lite."""
  try:
    # pylint: disable-next=g-import-not-at-top
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


def int8_input_quantization(content):
  """{scale, zero_point} of an int8 model's input QUANTIZE op, or None."""
  it = make_interpreter(content, xnnpack=False)
  for t in it.get_tensor_details():
    if t['dtype'] == np.int8 and t['name'] == 'tfl.quantize':
      scale, zero = t['quantization']
      return dict(scale=float(scale), zero_point=int(zero))
  return None
