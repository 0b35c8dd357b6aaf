"""Model zoo: tf_keras functional models that take raw float32 pixels.

Every model starts with a `Normalization` layer named 'preprocess' that
applies `(x - mean) / std` (so exported SavedModels / TFLite models take raw
0..255 pixels) and ends with a Dense layer named 'output' that produces
LOGITS (no softmax).

Every kernel initializer is seeded from `(seed, index of the initializer in
build order)` through numpy's SeedSequence, so the same seed gives the same
weights and different seeds give unrelated weights. Biases start at zero.

Prunable layers have stable, readable names: 'fc1', 'fc2', 'output',
'conv1', ... (per model in `tf_tickets.zoo`, which holds the bodies).
`ModelSettings` (gin `model.*`) picks a zoo model or your own builder.
"""
import inspect

import numpy as np

from tf_tickets import settings
from tf_tickets.keras import keras
from tf_tickets.zoo import MODELS
from tf_tickets.zoo import Init
from tf_tickets.errors import ConfigError
from tf_tickets.errors import check_int

layers = keras.layers


def _per_channel(setting, values, channels):
  try:
    v = [float(a) for a in np.ravel(np.asarray(values, np.float64))]
  except (TypeError, ValueError):
    raise ConfigError(setting, f'expected numbers, got {values!r}') from None
  if len(v) == 1:
    v = v * channels
  if len(v) != channels:
    raise ConfigError(setting, f'has {len(v)} values; expected 1 or one per '
                      f'input channel ({channels})')
  return v


@settings.section('model')
class ModelSettings(settings.Settings):
  """Model settings (gin: `model.*`).

  name: a zoo model (a key of MODELS).
  builder: None, or your function (gin: `model.builder = @my_models.cnn`
    with `import my_models` in the gin file) returning a functional or
    Sequential tf_keras model with logits out; it is called with those of
    input_shape, num_classes, mean, std and seed it takes as arguments
    (the data's; images come in as float32 raw pixels 0..255).
  options: {namespace: {option: value}} of the zoo builders' keyword
    options (gin: `mlp.widths = (300, 100)`, `resnet20.width`,
    `mobilenet_v1.width_multiplier`, ...).
  """
  name: str = 'lenet_300_100'
  builder: object = None
  options: dict = None

  def validate(self):
    if self.builder is None and self.name not in MODELS:
      raise ConfigError('model.name', f'unknown model {self.name!r}; valid: '
                        + ', '.join(repr(k) for k in MODELS))
    if self.builder is not None and not callable(self.builder):
      raise ConfigError('model.builder', f'expected a function (gin: '
                        f'@module.function), got {self.builder!r}')
    options = dict(self.options or {})
    for namespace, values in options.items():
      fn = settings.OPTIONS.get(namespace)
      if fn is None:
        raise ConfigError(f'model.options[{namespace!r}]', 'not a model '
                          'with options; valid: ' + ', '.join(
                              repr(k) for k in settings.OPTIONS))
      valid = [p.name for p in inspect.signature(fn).parameters.values()
               if p.default is not p.empty]
      for key in values:
        if key not in valid:
          raise ConfigError(f'{namespace}.{key}', 'unknown setting (valid: '
                            + ', '.join(f'{namespace}.{v}' for v in valid)
                            + ')')
    self.set('options', options or None)


def build_model(name='lenet_300_100', *, input_shape, num_classes,
                mean=(0.,), std=(1.,), seed=0, builder=None, options=None):
  """Builds model `name` (a key of MODELS) for raw float32 pixel input,
  or your own with `builder`.

  Args:
    name, builder, options: as `ModelSettings`.
    input_shape: (H, W, C) of one image.
    num_classes: number of logits.
    mean, std: per-channel (or one shared) normalisation statistics, in pixel
      units (`Data.mean`, `Data.std`); applied by the 'preprocess' layer.
    seed: int; seeds every kernel initializer.

  Returns:
    An uncompiled `keras.Model` named `name`.
  """
  cfg = ModelSettings(name=name, builder=builder, options=options)
  if builder is not None:
    return _own_model(builder, dict(input_shape=tuple(input_shape),
                                    num_classes=num_classes, mean=mean,
                                    std=std, seed=seed))
  try:
    input_shape = tuple(int(d) for d in input_shape)
  except (TypeError, ValueError):
    input_shape = ()
  if len(input_shape) != 3 or min(input_shape) < 1:
    raise ConfigError('model.input_shape',
                      f'expected (height, width, channels), got {input_shape!r}')
  num_classes = check_int('model.num_classes', num_classes, 1)
  seed = check_int('model.seed', seed, 0)
  channels = input_shape[-1]
  mean = _per_channel('model.mean', mean, channels)
  std = _per_channel('model.std', std, channels)
  if min(std) <= 0:
    raise ConfigError('model.std', f'must be > 0, got {std!r}')

  inputs = keras.Input(input_shape, dtype='float32', name='pixels')
  x = layers.Normalization(mean=mean, variance=[s * s for s in std],
                           name='preprocess')(inputs)
  logits = MODELS[name](x, num_classes, Init(int(seed)),
                        **(cfg.options or {}).get(name, {}))
  return keras.Model(inputs, logits, name=name)


def _own_model(builder, available):
  """`builder(...)` with the arguments it takes; checks what it returns."""
  try:
    params = inspect.signature(builder).parameters
  except (TypeError, ValueError):
    params = {}
  takes_all = any(p.kind == p.VAR_KEYWORD for p in params.values())
  kwargs = {k: v for k, v in available.items() if takes_all or k in params}
  name = getattr(builder, '__name__', repr(builder))
  model = builder(**kwargs)
  if not isinstance(model, keras.Model):
    module = type(model).__module__ or ''
    what = ('a Keras 3 model: build it with tf_keras (`import tf_keras as '
            'keras`)' if module.startswith('keras') else
            f'a {type(model).__name__}')
    raise ConfigError('model.builder', f'{name} returned {what}, not a '
                      'tf_keras Model')
  if not (model._is_graph_network  # pylint: disable=protected-access
          or isinstance(model, keras.Sequential)):
    raise ConfigError('model.builder', f'{name} returned a subclassed model '
                      f'({type(model).__name__}); return a functional or '
                      'Sequential tf_keras model')
  shape = tuple(model.input_shape[1:]) if not isinstance(
      model.input_shape, list) else None
  if shape != tuple(available['input_shape']):
    raise ConfigError('model.builder', f'{name} returned a model for inputs '
                      f'{shape}; the data has {available["input_shape"]}')
  return model


def build_for(data, seed=0, cfg=None, **kwargs):
  """`build_model` for the images of `data` (a `data.Data`): its input
  shape, number of classes and normalisation statistics; the model of
  `cfg` (a `ModelSettings`) or of `kwargs` (`build_model`'s, e.g. the
  model `name`)."""
  if cfg is not None:
    kwargs = dict(cfg.as_dict(), **kwargs)
  return build_model(input_shape=data.input_shape,
                     num_classes=data.num_classes, mean=data.mean,
                     std=data.std, seed=seed, **kwargs)
