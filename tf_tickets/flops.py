"""FLOPs of a wrapped network, as the RigL paper counts them (Appendix H).

Inference FLOPs of a network: for every prunable layer, 2 FLOPs (a multiply
and an add) per active weight per output position (1 for a Dense layer on
vectors, H_out * W_out for a convolution). Biases, activations, pooling and
normalisation are left out (they are the same for every method and small);
so are layers without prunable weights.

Training FLOPs per example, with f_S the sparse and f_D the dense inference
FLOPs (forward = f, backward = 2 f):

* dense, static, SET, SNIP, a lottery level: 3 f (f of the network trained);
* RigL: (3 f_S ΔT + 2 f_S + f_D) / (ΔT + 1): a dense gradient every ΔT
  steps (`Algorithm.training_flops`);
* GMP: the mean over training of 3 f(t), with f(t) the FLOPs at the
  step's sparsity (dense until pruning begins).

An Embedding layer looks rows up and multiplies nothing: it counts 0.

These are the paper's definitions; they count arithmetic, not time (a
sparse kernel that runs as dense costs the dense time). As in the paper,
RigL is charged a dense gradient every ΔT for the whole run (updates stop
at T_end), and the extra pass of `sparse_training.grow_batch_size` is not
counted; a layer called several times is counted once.
"""
import numpy as np

from tf_tickets import wrapper as wrapper_lib
from tf_tickets.keras import keras


def positions(layer):
  """Output positions a layer's kernel is applied at (1 for vectors)."""
  shape = layer.output_shape
  if isinstance(shape, list):
    shape = shape[0]
  return int(np.prod([d for d in shape[1:-1]] or [1]))


def by_key(model, dense=False):
  """Inference FLOPs per example of each prunable weight (dense=True: as if
  its mask were all ones). An Embedding is a table lookup: 0 FLOPs."""
  out = {}
  for wr in wrapper_lib.wrappers(model):
    if isinstance(wr.layer, keras.layers.Embedding):
      out.update({key: 0 for key in wr.keys})
      continue
    n = positions(wr)  # the wrapper is the node in the functional graph
    for key, m in zip(wr.keys, wr.masks):
      active = int(np.prod(m.shape)) if dense else int(
          np.count_nonzero(m.numpy()))
      out[key] = 2 * active * n
  return out


def inference_flops(model, dense=False):
  """Inference FLOPs per example of the prunable layers."""
  return sum(by_key(model, dense).values())


def report(model, training_per_example=None):
  """The FLOPs fields of a results row; training defaults to 3 f."""
  sparse, dense = inference_flops(model), inference_flops(model, dense=True)
  train = 3 * sparse if training_per_example is None else training_per_example
  return dict(
      inference_flops=sparse, inference_flops_dense=dense,
      inference_flops_fraction=sparse / dense if dense else 1.0,
      training_flops_per_example=train,
      training_flops_fraction=train / (3 * dense) if dense else 1.0)
