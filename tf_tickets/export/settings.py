"""Export settings: the gin `export.*` namespace and the parsers of format
and quantisation names (shared with the CLI's --quantize)."""
from tf_tickets import settings
from tf_tickets.errors import ConfigError

QUANTIZATIONS = ('none', 'dynamic', 'int8', 'float16')
FORMATS = ('saved_model', 'tflite', 'c_array', 'compact')


def as_tuple(value):
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
  items = [v for value in as_tuple(values) for v in as_tuple(value)]
  return _unique_choices(items, QUANTIZATIONS, setting, 'quantisation') or (
      'none',)


def parse_formats(values, setting='export.formats'):
  """Normalises format names ('tflite,c_array' or a list); validates."""
  return _unique_choices(as_tuple(values), FORMATS, setting, 'format')


@settings.section('export')
class ExportSettings(settings.Settings):
  """Export at the end of a training run (gin: `export.*`).

  Attributes:
    formats: () (no export, the default) or some of 'saved_model', 'tflite',
      'c_array' and 'compact'. The SavedModel is always written when
      anything is (the TFLite converter reads it); 'c_array' implies
      'tflite'. 'compact' also writes the network without its empty units
      and channels (`export.compact`) in OUT/compact/, in the same formats,
      checked against the masked network (1e-5 relative).
    quantize: quantised TFLite variants besides float32: 'none', 'dynamic',
      'int8', 'float16' (a list or a comma-separated string).
  """
  formats: tuple = settings.resumable(())
  quantize: tuple = settings.resumable(('none',))

  def validate(self):
    self.set('formats', parse_formats(self.formats, 'export.formats'))
    self.set('quantize', parse_quantize(self.quantize, 'export.quantize'))
