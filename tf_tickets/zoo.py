"""The model zoo's bodies: `MODELS[name](x, num_classes, init, **options)`
builds a body on the normalised tensor `x` and returns the logits tensor;
`init(kind)` returns a fresh seeded initializer ('glorot' = Glorot normal,
'he' = He normal, 'he_depthwise' = He normal with the fan-in of a depthwise
kernel, i.e. 3*3 not 3*3*C). `tf_tickets.models` puts the input and the
normalisation in front (see its docstring).
"""
import numpy as np

from tf_tickets import settings
from tf_tickets.keras import keras
from tf_tickets.errors import ConfigError
from tf_tickets.errors import check_int

layers = keras.layers


class Init:
  """Hands out deterministically seeded kernel initializers in build order."""

  def __init__(self, seed):
    self.seed = seed
    self.count = 0

  def __call__(self, kind):
    s = int(np.random.SeedSequence([self.seed, self.count]).generate_state(1)[0]
            & 0x7FFFFFFF)
    self.count += 1
    if kind == 'glorot':
      return keras.initializers.GlorotNormal(seed=s)
    if kind == 'he':
      return keras.initializers.HeNormal(seed=s)
    if kind.startswith('he_depthwise'):
      # Keras computes the fan-in of a (3, 3, C, 1) depthwise kernel as 9*C;
      # its real fan-in is 9, so scale the variance back up by C.
      channels = int(kind.split(':')[1])
      return keras.initializers.VarianceScaling(
          scale=2.0 * channels, mode='fan_in',
          distribution='truncated_normal', seed=s)
    raise ValueError(kind)


def _dense(x, units, init, kind, name, activation=None):
  return layers.Dense(units, activation=activation, name=name,
                      kernel_initializer=init(kind))(x)


def _conv(x, filters, init, kind, name, kernel=3, strides=1, bn=False,
          activation='relu', padding='same'):
  """Conv2D (+ BatchNorm) (+ activation); layers named name, name_bn, ..."""
  x = layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                    use_bias=not bn, kernel_initializer=init(kind),
                    name=name)(x)
  if bn:
    x = layers.BatchNormalization(name=name + '_bn')(x)
  if activation == 'relu6':
    x = layers.ReLU(6.0, name=name + '_relu6')(x)
  elif activation:
    x = layers.Activation(activation, name=name + '_' + activation)(x)
  return x


# ------------------------------------------------------------------ LeNets


def lenet_300_100(x, num_classes, init):
  """LeNet-300-100 (LeCun et al. 1998) as in the LTH paper; Glorot normal."""
  x = layers.Flatten(name='flatten')(x)
  x = _dense(x, 300, init, 'glorot', 'fc1', 'relu')
  x = _dense(x, 100, init, 'glorot', 'fc2', 'relu')
  return _dense(x, num_classes, init, 'glorot', 'output')


@settings.options('mlp')
def mlp(x, num_classes, init, widths=(2048, 2048)):
  """A multilayer perceptron with ReLU hidden layers of `widths` (gin
  `mlp.widths`); Glorot normal, layers fc1, fc2, ..., output. The default
  784-2048-2048-10 is the wide MLP of the edge benchmarks."""
  x = layers.Flatten(name='flatten')(x)
  for i, width in enumerate(widths):
    x = _dense(x, int(width), init, 'glorot', f'fc{i + 1}', 'relu')
  return _dense(x, num_classes, init, 'glorot', 'output')


def lenet5(x, num_classes, init):
  """LeNet-5 in its modern ReLU / max-pool form; Glorot normal.

  (LeCun et al. 1998 used tanh units with uniform +-2.4/fan_in weights; with
  ReLU we use the Glorot normal init of the other LTH-style small models.)
  """
  x = _conv(x, 6, init, 'glorot', 'conv1', kernel=5, padding='same')
  x = layers.MaxPooling2D(2, name='pool1')(x)
  x = _conv(x, 16, init, 'glorot', 'conv2', kernel=5, padding='valid')
  x = layers.MaxPooling2D(2, name='pool2')(x)
  x = layers.Flatten(name='flatten')(x)
  x = _dense(x, 120, init, 'glorot', 'fc1', 'relu')
  x = _dense(x, 84, init, 'glorot', 'fc2', 'relu')
  return _dense(x, num_classes, init, 'glorot', 'output')


# -------------------------------------------------------- Conv-2 / 4 / 6


def _conv_n(x, num_classes, init, stages):
  """Conv-2/4/6 of Frankle & Carbin 2019 (Fig. 2); Glorot normal."""
  i = 0
  for s, filters in enumerate((64, 128, 256)[:stages]):
    for _ in range(2):
      i += 1
      x = _conv(x, filters, init, 'glorot', f'conv{i}')
    x = layers.MaxPooling2D(2, name=f'pool{s + 1}')(x)
  x = layers.Flatten(name='flatten')(x)
  x = _dense(x, 256, init, 'glorot', 'fc1', 'relu')
  x = _dense(x, 256, init, 'glorot', 'fc2', 'relu')
  return _dense(x, num_classes, init, 'glorot', 'output')


def conv2(x, num_classes, init):
  return _conv_n(x, num_classes, init, 1)


def conv4(x, num_classes, init):
  return _conv_n(x, num_classes, init, 2)


def conv6(x, num_classes, init):
  return _conv_n(x, num_classes, init, 3)


# ------------------------------------------------------------------ ResNet


@settings.options('resnet20')
def resnet20(x, num_classes, init, width=16):
  """CIFAR ResNet-20 (He et al. 2016, Sec. 4.2); He normal.

  3x3 conv (width) + BN + ReLU, then 3 stages of 3 basic blocks with widths
  width, 2*width, 4*width (the first block of stages 2 and 3 has stride 2),
  global average pooling and Dense 'output'. Where the shape changes the
  shortcut is a 1x1 stride-2 projection conv + BN (option B; prunable like
  the other convs and simple to export). Layers: 'conv1',
  'stage{s}_block{b}_conv1', '..._conv2', '..._shortcut'.
  """
  width = check_int('resnet20.width', width, 1)
  x = _conv(x, width, init, 'he', 'conv1', bn=True)
  for stage in range(3):
    filters = width * 2 ** stage
    for block in range(3):
      strides = 2 if stage > 0 and block == 0 else 1
      name = f'stage{stage + 1}_block{block + 1}'
      y = _conv(x, filters, init, 'he', name + '_conv1', strides=strides,
                bn=True)
      y = _conv(y, filters, init, 'he', name + '_conv2', bn=True,
                activation=None)
      if strides != 1 or x.shape[-1] != filters:
        x = _conv(x, filters, init, 'he', name + '_shortcut', kernel=1,
                  strides=strides, bn=True, activation=None)
      x = layers.Add(name=name + '_add')([x, y])
      x = layers.Activation('relu', name=name + '_relu')(x)
  x = layers.GlobalAveragePooling2D(name='avg_pool')(x)
  return _dense(x, num_classes, init, 'he', 'output')


# ------------------------------------------------------------------ VGG

_VGG_CFGS = {
    'vgg16': (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M',
              512, 512, 512, 'M', 512, 512, 512, 'M'),
    'vgg19': (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M',
              512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'),
}


def _vgg(x, num_classes, init, cfg):
  """CIFAR VGG: conv3x3 + BN + ReLU blocks, max-pools, global average pool,
  a single Dense 'output' (as in Frankle & Carbin 2019); He normal."""
  i = p = 0
  for v in cfg:
    if v == 'M':
      p += 1
      x = layers.MaxPooling2D(2, name=f'pool{p}')(x)
    else:
      i += 1
      x = _conv(x, v, init, 'he', f'conv{i}', bn=True)
  x = layers.GlobalAveragePooling2D(name='avg_pool')(x)
  return _dense(x, num_classes, init, 'he', 'output')


def vgg16(x, num_classes, init):
  return _vgg(x, num_classes, init, _VGG_CFGS['vgg16'])


def vgg19(x, num_classes, init):
  return _vgg(x, num_classes, init, _VGG_CFGS['vgg19'])


# ------------------------------------------------------------- MobileNet v1

# (pointwise filters, depthwise stride) of the 13 depthwise-separable blocks.
_MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1),
                     (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
                     (512, 1), (1024, 2), (1024, 1))


@settings.options('mobilenet_v1')
def mobilenet_v1(x, num_classes, init, width_multiplier=1.0, cifar_stem=None):
  """MobileNet-v1 (Howard et al. 2017); He normal.

  A 3x3 stride-2 conv (32 filters) + BN + ReLU6, then 13 blocks of
  DepthwiseConv2D 3x3 + BN + ReLU6 and 1x1 Conv2D + BN + ReLU6, global
  average pooling and Dense 'output'. All channel counts are scaled by
  `width_multiplier` (at least 8 channels).

  The 3x3 convs use explicit 1-pixel zero padding (ZeroPadding2D + 'valid')
  instead of TF 'same' padding: XNNPack's sparse (NCHW) inference path needs
  padding 1 on every side, and the first conv must be 3x3 stride 2 with 3
  input channels (true for RGB input; grayscale input still works, densely).

  Args:
    width_multiplier: alpha of the paper, > 0.
    cifar_stem: for small (32x32) inputs make the first stride-2 depthwise
      block stride 1 (total downsampling 16 instead of 32, so a 32x32 image
      ends at 2x2). None: True when the input is at most 32 pixels high.
  """
  if (isinstance(width_multiplier, bool)
      or not isinstance(width_multiplier, (int, float))
      or width_multiplier <= 0):
    raise ConfigError('mobilenet_v1.width_multiplier',
                      f'expected a number > 0, got {width_multiplier!r}')
  if cifar_stem is None:
    cifar_stem = x.shape[1] is not None and x.shape[1] <= 32

  def ch(c):
    return max(8, int(c * width_multiplier + 0.5))

  x = layers.ZeroPadding2D(1, name='conv1_pad')(x)
  x = _conv(x, ch(32), init, 'he', 'conv1', strides=2, bn=True,
            activation='relu6', padding='valid')
  first_stride2 = True
  for i, (filters, strides) in enumerate(_MOBILENET_BLOCKS, start=1):
    if strides == 2 and first_stride2:
      first_stride2 = False
      if cifar_stem:
        strides = 1
    channels = int(x.shape[-1])
    x = layers.ZeroPadding2D(1, name=f'dw{i}_pad')(x)
    x = layers.DepthwiseConv2D(
        3, strides=strides, padding='valid', use_bias=False,
        depthwise_initializer=init(f'he_depthwise:{channels}'),
        name=f'dw{i}')(x)
    x = layers.BatchNormalization(name=f'dw{i}_bn')(x)
    x = layers.ReLU(6.0, name=f'dw{i}_relu6')(x)
    x = _conv(x, ch(filters), init, 'he', f'pw{i}', kernel=1, bn=True,
              activation='relu6')
  x = layers.GlobalAveragePooling2D(name='avg_pool')(x)
  return _dense(x, num_classes, init, 'he', 'output')


MODELS = {
    'lenet_300_100': lenet_300_100,
    'lenet5': lenet5,
    'mlp': mlp,
    'conv2': conv2,
    'conv4': conv4,
    'conv6': conv6,
    'resnet20': resnet20,
    'vgg16': vgg16,
    'vgg19': vgg19,
    'mobilenet_v1': mobilenet_v1,
}
