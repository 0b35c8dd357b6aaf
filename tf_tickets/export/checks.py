"""The self-checks of an export, against the Keras model's logits on the
first test images (see CHECKS):

* float models (float32, float32_dense, float16, the SavedModel, and the
  stripped network against the wrapped one): max |logit difference| <=
  rtol * max(1, max |reference logit|);
* quantised models (dynamic, int8): argmax agreement with the Keras model
  >= min_agreement and test accuracy >= Keras accuracy - max_accuracy_drop;
* kernel sparsity: every pruned weight is still exactly zero in the
  SavedModel's variables (which must equal the stripped kernels) and in every
  .tflite (sparse tensors decoded, quantised ones dequantised).
"""
import re

import numpy as np
import tensorflow as tf

from tf_tickets import data as data_lib
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.keras import keras

# Thresholds per check kind.
CHECKS = {
    'float32': dict(rtol=1e-4),
    'float16': dict(rtol=1e-2),
    'dynamic': dict(min_agreement=0.95, max_accuracy_drop=0.02),
    'int8': dict(min_agreement=0.90, max_accuracy_drop=0.03),
}


def reference_logits(model, x, y, batch_size=250):
  """Logits through the training pipeline's `data.eval_dataset` batches
  (float inputs), or of `x` in batches as it is (e.g. int32 token ids)."""
  if not model.inputs[0].dtype.is_floating:
    out = [model(x[i:i + batch_size], training=False).numpy()
           for i in range(0, len(x), batch_size)]
  else:
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
  """[(key, stripped layer, weight short name, pruned mask, stripped
  kernel)] for every prunable weight of `wrapped`."""
  out = []
  for key, (wr, i) in wrapper_lib.prunable_entries(wrapped).items():
    short = wrapper_lib.short_name(wr.prunable_weights[i])
    layer = stripped.get_layer(wr.layer.name)
    kernel = next(w for w in layer.weights
                  if wrapper_lib.short_name(w) == short).numpy()
    pruned = wr.masks[i].numpy() == 0
    out.append((key, layer, short, pruned, kernel))
  return out


def check_saved_model(directory, kernels, inputs, reference, labels,
                      name='pixels'):
  """Reloads the SavedModel: parity and kernel sparsity (`inputs` in the
  signature's dtype, fed as its input `name`)."""
  loaded = tf.saved_model.load(directory)
  fn = loaded.signatures['serving_default']
  logits = np.concatenate([
      fn(**{name: tf.constant(inputs[i:i + 250])})['logits'].numpy()
      for i in range(0, len(inputs), 250)])
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


def _lost_weights(keras_kernel, tflite_kernel):
  """Active weights the .tflite stores as 0, beyond quantisation: Keras
  weights of at least one int8 step (max |w| / 127) that became 0."""
  magnitude = np.abs(keras_kernel)
  step = np.max(magnitude) / 127.0
  return int(np.count_nonzero((magnitude > 0) & (magnitude >= step)
                              & (tflite_kernel == 0)))


def check_tflite_kernels(structure, kernels):
  """Finds each prunable kernel among the TFLite constants; checks zeros.

  `structure` is `decode.model_structure` of the .tflite. A kernel is
  matched by its TFLite layout shape, preferring a tensor whose name
  mentions the layer and whose zeros include the pruned positions. The
  check: every pruned weight is zero (BN folding rescales kernels but keeps
  zeros) and no active weight is lost (`_lost_weights`). The storage is
  `decode.model_structure`'s ('dense', 'sparse': densified at load, or
  'blocks 1xN': run sparse). The reported non-zeros equal the active
  weights for float storage;
  quantisation may round a few more small weights to zero. A kernel that is
  not found is noted (not a failure). Returns (layers, failures, notes).
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
    name, _, value, storage = constants[j]
    zeros_ok = bool(np.all(value[expected] == 0))
    lost = _lost_weights(_tflite_layout(layer, kernel), value)
    layers[key] = dict(nonzero=int(np.count_nonzero(value)), storage=storage,
                       pruned_are_zero=zeros_ok, lost=lost, tensor=name)
    if not zeros_ok:
      failures.append(f'{key}: {int(np.count_nonzero(value[expected]))} '
                      'pruned weights are not zero in the .tflite')
    if lost:
      failures.append(f'{key}: {lost} active weights are zero in the '
                      f'.tflite ({storage} storage; the converter drops the '
                      'trailing partial block of a block-sparse tensor)')
  return layers, failures, notes
