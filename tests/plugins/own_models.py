"""A user's own model builder and dataset loader, plugged in by gin
(tests/plugins/own_cnn.gin): what `import my_module` in a gin file and
`model.builder = @my_module.fn` look like for a user."""
import os

import gin
import numpy as np
import tf_keras as keras

from tf_tickets import sources

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'data', 'fashion_mnist_small')


@gin.configurable
def small_cnn(input_shape, num_classes, seed, width=8):
  """Raw pixels in, logits out; seeded initialisers."""
  init = lambda i: keras.initializers.GlorotUniform(seed=seed + i)
  inputs = keras.Input(input_shape)
  x = keras.layers.Rescaling(1 / 255.0)(inputs)
  x = keras.layers.Conv2D(width, 3, activation='relu', name='conv',
                          kernel_initializer=init(0))(x)
  x = keras.layers.MaxPooling2D(2)(x)
  x = keras.layers.Flatten()(x)
  x = keras.layers.Dense(32, activation='relu', name='fc',
                         kernel_initializer=init(1))(x)
  outputs = keras.layers.Dense(num_classes, name='output',
                               kernel_initializer=init(2))(x)
  return keras.Model(inputs, outputs, name='small_cnn')


@gin.configurable
def fixture_images(train_examples=1200):
  """The Fashion-MNIST fixture as keras.datasets return it: (N, 28, 28)."""
  x_train, y_train, x_test, y_test = sources.load_idx(FIXTURE)
  return ((x_train[:train_examples, ..., 0], y_train[:train_examples]),
          (x_test[..., 0], y_test))


@gin.configurable
def no_prunable_layer(input_shape, num_classes):
  del num_classes
  inputs = keras.Input(input_shape)
  return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))


@gin.configurable
def keras3_model(input_shape, num_classes):
  import keras as keras3  # pylint: disable=g-import-not-at-top
  inputs = keras3.Input(input_shape)
  return keras3.Model(inputs, keras3.layers.Dense(num_classes)(
      keras3.layers.Flatten()(inputs)))


@gin.configurable
def wrong_images():
  x = np.zeros((10, 28, 28), np.float32)
  y = np.zeros(10, np.int64)
  return (x, y), (x, y)


class _Subclassed(keras.Model):

  def __init__(self, num_classes):
    super().__init__()
    self.flat = keras.layers.Flatten()
    self.out = keras.layers.Dense(num_classes)

  def call(self, x):
    return self.out(self.flat(x))


@gin.configurable
def subclassed_model(num_classes):
  return _Subclassed(num_classes)


def fashion_cnn():
  """`small_cnn` for 28x28x1 images: a builder for `tt.run_lottery`."""
  return small_cnn((28, 28, 1), 10, seed=0)


@gin.configurable
def fixture_stream(train_examples=1200):
  """The fixture as (train, test) tf.data.Datasets of (image, label)
  examples from generators (no known length): a training set that
  streams, as one larger than memory would."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  (x_train, y_train), (x_test, y_test) = fixture_images(train_examples)

  def dataset(x, y):
    spec = (tf.TensorSpec(x.shape[1:], tf.uint8), tf.TensorSpec((), tf.int64))
    return tf.data.Dataset.from_generator(lambda: zip(x, y),
                                          output_signature=spec)
  return dataset(x_train, y_train), dataset(x_test, y_test)
