"""Writing the SavedModel and converting it to TFLite bytes."""
import contextlib
import os
import sys
import warnings

import numpy as np
import tensorflow as tf

from tf_tickets.errors import TicketsError
from tf_tickets.errors import first_line


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


def input_signature(model):
  """(name, tf.DType, shape) of the exported input: the model's own input
  (one tensor). Float images (N, H, W, C), the zoo's raw-pixel contract,
  are called 'pixels'; any other input (e.g. int32 token ids) 'inputs'."""
  if len(model.inputs) != 1:
    raise TicketsError(f'the export takes models with one input tensor; '
                       f'{model.name!r} has {len(model.inputs)}')
  inp = model.inputs[0]
  shape = [None] + [None if d is None else int(d) for d in inp.shape[1:]]
  name = ('pixels' if inp.dtype.is_floating and len(shape) == 4
          else 'inputs')
  return name, inp.dtype, shape


def save_saved_model(model, directory):
  """Writes `model` as a plain TF SavedModel with the model's own input.

  `serving_default`: `pixels` (float32 (None, H, W, C), the zoo's models)
  or `inputs` (any other input, in its dtype: `input_signature`) ->
  {'logits'}. The variables are tracked directly (not through Keras'
  SavedModel format, which traces every layer and is 4-5x slower to
  write); load it with `tf.saved_model.load`. `loaded.model_variables`
  lists the weights.
  """
  name, dtype, shape = input_signature(model)
  spec = tf.TensorSpec(shape, dtype, name=name)

  @tf.function(input_signature=[spec])
  def serve(x):
    return {'logits': model(x, training=False)}

  module = tf.Module()
  module.model_variables = list(model.weights)
  module.serve = serve
  tf.saved_model.save(module, directory,
                      signatures={'serving_default': serve})


def convert(saved_model_dir, quantization='none', sparse=True,
            calibration=None, setting='--quantize', dense_per_tensor=True):
  """Converts the SavedModel to TFLite bytes.

  Input and output stay float32 for every quantisation (the int8 model gets
  a QUANTIZE op at the input and a DEQUANTIZE op at the output), so the
  quantisation parameters never leak into app code.

  Args:
    saved_model_dir: written by `save_saved_model`.
    quantization: one of `settings.QUANTIZATIONS`.
    sparse: add `Optimize.EXPERIMENTAL_SPARSITY`: pruned kernels are stored
      in TFLite's sparse format with a DENSIFY op in front of their user.
    calibration: inputs (N, ...) in the model's input dtype (float32 raw
      pixels for the zoo's models), for 'int8'.
    setting: the setting named in conversion errors.
    dense_per_tensor: quantise Dense (FULLY_CONNECTED) kernels per tensor
      instead of per output unit ('dynamic' and 'int8'; convolutions stay
      per channel). A per-channel scale costs 12 bytes per output unit
      (float32 scale + int64 zero point) for the kernel and again for the
      bias, a large share of a sparse Dense layer: LeNet-300-100 at 90%
      sparsity, int8 + sparse: 101,032 bytes per channel, 85,776 per tensor,
      test accuracy 0.879 vs 0.8805 (2000 Fashion-MNIST test images).

  Raises:
    TicketsError: the converter failed (the message names `setting`).
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
    images = np.asarray(calibration)
    converter.representative_dataset = lambda: ([img[None]] for img in images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  try:
    with warnings.catch_warnings(), _stdout_to_stderr():
      warnings.filterwarnings('ignore', message='.*Statistics for quantized')
      return converter.convert()
  except Exception as e:  # pylint: disable=broad-except
    msg = first_line(e, 400)
    raise TicketsError(f'{setting}: the TFLite converter cannot make the '
                       f'{quantization!r} variant of this network: '
                       f'{type(e).__name__}: {msg}') from None
