"""The Keras that tf_tickets uses: tf_keras (the Keras 2 API).

tfmot 0.8 does not work with Keras 3, so `TF_USE_LEGACY_KERAS=1` is set before
TensorFlow is imported (`import tf_tickets` does this first thing). Everything
in the package imports Keras from here: `from tf_tickets.keras import keras`.
"""
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'

import tf_keras as keras  # pylint: disable=g-import-not-at-top,wrong-import-position

from tf_tickets.errors import KerasVersionError  # pylint: disable=wrong-import-position

__all__ = ['keras', 'batchnorm_layers', 'check_keras_object']

_HOWTO = ('tf_tickets needs tf_keras (Keras 2 API) models and layers, because '
          'tensorflow-model-optimization does not support Keras 3. Build the '
          'model with `import tf_keras as keras` (or `from tf_tickets.keras '
          'import keras`) instead of `import keras` / `tf.keras`, or set '
          'TF_USE_LEGACY_KERAS=1 before TensorFlow is imported.')


def check_keras_object(obj, what='model'):
  """Raises KerasVersionError if `obj` is not a tf_keras Layer/Model."""
  if isinstance(obj, keras.layers.Layer):
    return obj
  module = type(obj).__module__ or ''
  if module.startswith('keras'):
    raise KerasVersionError(
        f'got a Keras 3 {what} ({type(obj).__module__}.{type(obj).__name__}). '
        + _HOWTO)
  raise KerasVersionError(
      f'expected a tf_keras {what}, got {type(obj).__name__}. ' + _HOWTO)


def batchnorm_layers(model):
  """Every BatchNormalization layer of a model, inside wrappers and nested
  models too, each once."""
  return [l for l in model.submodules
          if isinstance(l, keras.layers.BatchNormalization)]


def __getattr__(name):
  """`tf_tickets.keras.<name>` is tf_keras's `<name>` (e.g.
  `tt.keras.layers`): the package exports tf_keras as `tt.keras`, and once
  this module is imported the package attribute `keras` is this module."""
  return getattr(keras, name)
