"""Tests of tf_tickets.models: every model builds, normalises, is seeded."""
import numpy as np
import pytest

from tf_tickets.keras import keras
from tf_tickets import models
from tf_tickets.errors import ConfigError

MNIST = (28, 28, 1)
CIFAR = (32, 32, 3)
# Natural input of each model; tiny widths where the model has a width knob.
NATURAL = {
    'lenet_300_100': MNIST,
    'lenet5': MNIST,
    'mlp': MNIST,
    'conv2': CIFAR,
    'conv4': CIFAR,
    'conv6': CIFAR,
    'resnet20': CIFAR,
    'vgg16': CIFAR,
    'vgg19': CIFAR,
    'mobilenet_v1': CIFAR,
}
# Number of Dense / Conv2D / DepthwiseConv2D layers.
NUM_PRUNABLE = {
    'lenet_300_100': 3, 'lenet5': 5, 'mlp': 3, 'conv2': 5, 'conv4': 7, 'conv6': 9,
    'resnet20': 1 + 18 + 2 + 1,  # stem, 9 blocks x 2, 2 projections, output
    'vgg16': 14, 'vgg19': 17, 'mobilenet_v1': 1 + 13 * 2 + 1,
}
PRUNABLE = (keras.layers.Dense, keras.layers.Conv2D,
            keras.layers.DepthwiseConv2D)


# Small widths (`ModelSettings.options`; gin: `resnet20.width = 4`, ...).
TINY = {'resnet20': {'width': 4}, 'mobilenet_v1': {'width_multiplier': 0.25},
        'mlp': {'widths': (32, 16)}}


def _build(name, seed=0, shape=None, num_classes=10, options=None, **kw):
  options = {k: dict(v, **(options or {}).get(k, {})) for k, v in
             TINY.items()}
  return models.build_model(name, input_shape=shape or NATURAL[name],
                            num_classes=num_classes, seed=seed,
                            options=options, **kw)


def _pixels(shape, n=3, seed=0):
  return np.random.RandomState(seed).uniform(0, 255, (n,) + shape).astype(
      np.float32)


def test_registry_covers_all_models():
  assert set(models.MODELS) == set(NATURAL)


@pytest.mark.parametrize('name', sorted(NATURAL))
def test_builds_and_outputs_logits(name):
  shape = NATURAL[name]
  mean, std = (33.0,) * shape[-1], (78.0,) * shape[-1]
  m = _build(name, num_classes=7, mean=mean, std=std)
  assert m.name == name
  assert m.input_shape == (None,) + shape
  out = m(_pixels(shape), training=False).numpy()
  assert out.shape == (3, 7)
  assert np.all(np.isfinite(out))
  assert m.layers[-1].name == 'output'
  assert isinstance(m.layers[-1], keras.layers.Dense)
  assert m.layers[-1].activation is keras.activations.linear
  assert m.layers[1].name == 'preprocess'
  assert isinstance(m.layers[1], keras.layers.Normalization)
  names = [l.name for l in m.layers if isinstance(l, PRUNABLE)]
  assert len(names) == len(set(names)) == NUM_PRUNABLE[name]
  # Serialises (config round trip, as used by SavedModel / .keras files).
  clone = keras.Model.from_config(m.get_config())
  clone.set_weights(m.get_weights())
  x = _pixels(shape, n=2, seed=1)
  np.testing.assert_allclose(clone(x, training=False), m(x, training=False),
                             rtol=1e-5, atol=1e-5)


def test_layer_names():
  names = [l.name for l in _build('conv6').layers if isinstance(l, PRUNABLE)]
  assert names == ['conv1', 'conv2', 'conv3', 'conv4', 'conv5', 'conv6',
                   'fc1', 'fc2', 'output']
  m = _build('lenet_300_100')
  assert [l.name for l in m.layers if isinstance(l, PRUNABLE)] == [
      'fc1', 'fc2', 'output']
  assert [m.get_layer(n).units for n in ('fc1', 'fc2', 'output')] == [
      300, 100, 10]
  m = _build('lenet5')
  assert [l.name for l in m.layers if isinstance(l, PRUNABLE)] == [
      'conv1', 'conv2', 'fc1', 'fc2', 'output']
  assert m.get_layer('flatten').output_shape == (None, 400)
  r = _build('resnet20')
  assert r.get_layer('stage3_block3_conv2').filters == 16  # 4 * width 4
  assert r.get_layer('stage2_block1_shortcut').strides == (2, 2)


def test_mobilenet_structure():
  m = _build('mobilenet_v1')
  conv1 = m.get_layer('conv1')
  assert conv1.kernel_size == (3, 3) and conv1.strides == (2, 2)
  assert conv1.padding == 'valid' and conv1.kernel.shape[2] == 3
  assert sum(isinstance(l, keras.layers.DepthwiseConv2D)
             for l in m.layers) == 13
  assert m.get_layer('pw13').filters == 256  # 1024 * 0.25
  # cifar_stem (auto for 32x32): total downsampling 16 -> 2x2 at the end.
  assert m.get_layer('pw13').output_shape[1:3] == (2, 2)
  m = _build('mobilenet_v1', shape=(64, 64, 3),
             options={'mobilenet_v1': {'cifar_stem': False}})
  assert m.get_layer('pw13').output_shape[1:3] == (2, 2)  # 64 / 32
  # Grayscale input: the first conv takes C = 1 channels.
  g = _build('mobilenet_v1', shape=MNIST,
             options={'mobilenet_v1': {'cifar_stem': None}})
  assert g.get_layer('conv1').kernel.shape[2] == 1
  assert g(_pixels(MNIST)).shape == (3, 10)


def test_first_layer_normalises_raw_pixels():
  mean, std = (10.0, 120.0, 200.0), (2.0, 50.0, 64.0)
  m = _build('conv2', mean=mean, std=std)
  pre = keras.Model(m.input, m.get_layer('preprocess').output)
  x = _pixels(CIFAR)
  expected = (x - np.array(mean, np.float32)) / np.array(std, np.float32)
  np.testing.assert_allclose(pre(x).numpy(), expected, rtol=1e-5, atol=1e-5)
  # One shared value broadcasts to all channels.
  m = _build('lenet_300_100', mean=(72.5,), std=(90.0,))
  pre = keras.Model(m.input, m.get_layer('preprocess').output)
  x = _pixels(MNIST)
  np.testing.assert_allclose(pre(x).numpy(), (x - 72.5) / 90.0, rtol=1e-5,
                             atol=1e-5)


@pytest.mark.parametrize('name', ['lenet_300_100', 'resnet20',
                                  'mobilenet_v1'])
def test_seeding_is_deterministic(name):
  a, b, c = _build(name, seed=3), _build(name, seed=3), _build(name, seed=4)
  kernels = [(l.name, l.weights[0]) for l in a.layers
             if isinstance(l, PRUNABLE)]
  assert kernels
  for (lname, wa) in kernels:
    wb = b.get_layer(lname).weights[0].numpy()
    wc = c.get_layer(lname).weights[0].numpy()
    np.testing.assert_array_equal(wa.numpy(), wb)
    assert not np.array_equal(wa.numpy(), wc), lname
  # Layers of one model get different draws (not one repeated seed).
  w1 = a.layers[-1].kernel.numpy().ravel()
  w0 = kernels[0][1].numpy().ravel()
  n = min(len(w0), len(w1))
  assert not np.allclose(w0[:n] / w0[:n].std(), w1[:n] / w1[:n].std())


def test_initialisation_scale():
  m = _build('lenet_300_100')
  k = m.get_layer('fc1').kernel.numpy()  # Glorot normal: var = 2/(in+out)
  np.testing.assert_allclose(k.std(), np.sqrt(2.0 / (784 + 300)), rtol=0.05)
  r = _build('resnet20')
  k = r.get_layer('stage1_block1_conv1').kernel.numpy()  # He: var = 2/fan_in
  np.testing.assert_allclose(k.std(), np.sqrt(2.0 / (9 * 4)), rtol=0.2)
  mb = _build('mobilenet_v1')
  k = mb.get_layer('dw13').depthwise_kernel.numpy()  # depthwise fan_in = 9
  np.testing.assert_allclose(k.std(), np.sqrt(2.0 / 9), rtol=0.1)


def test_unknown_name():
  with pytest.raises(ConfigError) as e:
    models.build_model('resnet50', input_shape=CIFAR, num_classes=10)
  assert e.value.setting == 'model.name'
  assert 'lenet_300_100' in str(e.value) and 'mobilenet_v1' in str(e.value)


def test_gin_binds_the_model_and_its_options():
  """`model.name` and a zoo model's options (`mlp.widths`) from gin, through
  the entrypoints' adapter; an unknown option is one error naming it."""
  from tf_tickets import gin_config  # pylint: disable=g-import-not-at-top
  cfg = gin_config.read((), ["model.name = 'mlp'", 'mlp.widths = (7, 5)'])[
      'model']
  assert cfg.options == {'mlp': {'widths': (7, 5)}}
  m = models.build_model(input_shape=MNIST, num_classes=10, **cfg.as_dict())
  assert m.name == 'mlp' and m.get_layer('fc2').units == 5
  with pytest.raises(ConfigError, match=r'mlp\.width\b.*did you mean '
                     r'mlp\.widths'):
    gin_config.read((), ['mlp.width = 3'])
  with pytest.raises(ConfigError, match=r'mlp\.depth.*valid: mlp\.widths'):
    models.ModelSettings(options={'mlp': {'depth': 3}})


@pytest.mark.parametrize('kw,setting', [
    (dict(mean=(1.0, 2.0)), 'model.mean'),
    (dict(std=(0.0,)), 'model.std'),
    (dict(shape=(28, 28)), 'model.input_shape'),
    (dict(num_classes=0), 'model.num_classes'),
])
def test_invalid_arguments(kw, setting):
  with pytest.raises(ConfigError) as e:
    _build('lenet_300_100', **kw)
  assert e.value.setting == setting


def test_invalid_width():
  with pytest.raises(ConfigError) as e:
    _build('resnet20', options={'resnet20': {'width': 0}})
  assert e.value.setting == 'resnet20.width'
