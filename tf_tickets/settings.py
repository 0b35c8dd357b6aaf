"""One style for settings: a frozen dataclass per namespace.

    @settings.section('lottery')
    class LotterySettings(settings.Settings):
      levels: int = settings.resumable(0)
      ...
      def validate(self):
        self.set('levels', check_int('lottery.levels', self.levels, 0))

Defaults are written once (the fields), and `validate` (run on
construction) checks and normalises every field through the shared
validators in `tf_tickets.errors`. `replace(**changes)` returns a validated
copy. The classes are plain: nothing here reads gin. The entrypoints build
them (from gin files: `tf_tickets.gin_config`) and pass them down.

A section's namespace names its settings in error messages, in gin files
(`lottery.levels = 3`), in a run's identity (`identity`) and in
`RUN/config.json` (`to_json` / `from_json`: functions, such as a user's
`model.builder`, are stored as 'module.name' and imported back).
"""
import dataclasses
import importlib
import inspect
import json

from tf_tickets.errors import ConfigError


class Settings:
  """Base of the settings dataclasses."""
  namespace = None  # set by `section`

  def __post_init__(self):
    self.validate()

  def validate(self):
    """Checks and normalises the fields (override; use `self.set`)."""

  def set(self, name, value):
    """Sets a field of the frozen instance (for `validate` only)."""
    object.__setattr__(self, name, value)

  def replace(self, **changes):
    return dataclasses.replace(self, **changes)

  def as_dict(self):
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


# namespace -> settings class, in registration order (`section`).
SECTIONS = {}
# namespace -> a model builder whose keyword options the namespace sets
# (`mlp.widths`): they reach it through `ModelSettings.options`.
OPTIONS = {}


def section(namespace):
  """Class decorator: a frozen settings dataclass named `namespace`."""
  def decorate(cls):
    cls = dataclasses.dataclass(frozen=True)(cls)
    cls.namespace = namespace
    SECTIONS[namespace] = cls
    return cls
  return decorate


def options(namespace):
  """Function decorator: a model builder with keyword options set as
  `namespace.*` (e.g. `mlp.widths`); the function is not changed."""
  def decorate(fn):
    OPTIONS[namespace] = fn
    return fn
  return decorate


def resumable(default):
  """A field that only extends or displays a run (e.g. `lottery.levels`,
  `summaries.every`): it stays out of the run's identity, so changing it
  resumes or extends the run directory in place."""
  return dataclasses.field(default=default, metadata={'resumable': True})


def is_resumable(field):
  return bool(field.metadata.get('resumable'))


def resumable_settings():
  """{(namespace, field)} of every field marked `resumable`."""
  return {(namespace, f.name) for namespace, cls in SECTIONS.items()
          for f in dataclasses.fields(cls) if is_resumable(f)}


def function_name(fn):
  """'module.qualname' of a function that can be imported back, else None."""
  module = getattr(fn, '__module__', None)
  name = getattr(fn, '__qualname__', None)
  if not module or not name or '<' in name:
    return None
  try:
    found = _import(module, name)
  except (ImportError, AttributeError):
    return None
  return (f'{module}.{name}' if fn in (found, getattr(found, '__wrapped__',
                                                      None)) else None)


def _import(module, name):
  obj = importlib.import_module(module)
  for part in name.split('.'):
    obj = getattr(obj, part)
  return obj


def import_function(path, setting):
  """The function 'module.name' (as `function_name` wrote it)."""
  module, _, name = path.rpartition('.')
  while module:
    try:
      return _import(module, name)
    except ImportError:
      module, _, rest = module.rpartition('.')
      name = f'{rest}.{name}'
    except AttributeError:
      break
  raise ConfigError(setting, f'cannot import {path!r} (the function this '
                    'run was configured with); make its module importable '
                    '(PYTHONPATH)')


def plain(value):
  """A JSON value of a setting: tuples as lists, functions as
  {'function': 'module.name'} (None when it cannot be imported back)."""
  if callable(value) and not isinstance(value, type):
    return {'function': function_name(value)}
  if isinstance(value, dict):
    return {str(k): plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [plain(v) for v in value]
  return value


def to_json(sections):
  """{namespace: {field: JSON value}} of settings instances."""
  return {s.namespace: {k: plain(v) for k, v in s.as_dict().items()}
          for s in sections}


def _unplain(value, setting):
  if isinstance(value, dict) and set(value) == {'function'}:
    if value['function'] is None:
      raise ConfigError(setting, 'this run was configured with a function '
                        'that cannot be imported (a lambda or a local '
                        'function); give it again')
    return import_function(value['function'], setting)
  if isinstance(value, dict):
    return {k: _unplain(v, setting) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_unplain(v, setting) for v in value)
  return value


def from_json(namespace, fields, overrides=None):
  """The settings of `namespace` from its `to_json` fields, with
  `overrides` ({field: value}, already Python values) applied."""
  cls = SECTIONS[namespace]
  known = {f.name for f in dataclasses.fields(cls)}
  kwargs = {k: _unplain(v, f'{namespace}.{k}') for k, v in fields.items()
            if k in known}
  for key, value in (overrides or {}).items():
    if key not in known:
      raise ConfigError(f'{namespace}.{key}', 'unknown setting (valid: '
                        + ', '.join(f'{namespace}.{k}' for k in sorted(known))
                        + ')')
    kwargs[key] = value
  return cls(**kwargs)


def default_of(key):
  """The default of setting 'namespace.field' (or of a builder option
  'namespace.option'); None if there is no such setting."""
  namespace, _, name = key.partition('.')
  if namespace in SECTIONS:
    for f in dataclasses.fields(SECTIONS[namespace]):
      if f.name == name:
        return f.default
  if namespace in OPTIONS:
    param = inspect.signature(OPTIONS[namespace]).parameters.get(name)
    return None if param is None else param.default
  return None


def identity(sections):
  """{'namespace.field': canonical text} of the fields that make a run what
  it is: every field not marked `resumable` whose value is not the default
  (so a new setting, added with a default, leaves old identities alone).
  `ModelSettings.options` enter as their own 'namespace.option' keys."""
  out = {}
  for s in sections:
    defaults = type(s)()
    for f in dataclasses.fields(s):
      value = getattr(s, f.name)
      if is_resumable(f) or value == getattr(defaults, f.name):
        continue
      if f.name == 'options' and isinstance(value, dict):
        for namespace, params in value.items():
          for k, v in params.items():
            out[f'{namespace}.{k}'] = canonical(v)
        continue
      out[f'{s.namespace}.{f.name}'] = canonical(value)
  return out


def differing(old, new):
  """Sorted names of the settings in which two identities differ."""
  return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def canonical(value):
  """A value as the canonical JSON text identities hold."""
  return json.dumps(plain(value), sort_keys=True)


class Registry:
  """Names a setting accepts, each bound to a class or function.

      KINDS = Registry('experiment.kind')

      @KINDS.register('dense')
      def run_dense(ctx): ...

  `get(name)` raises ConfigError naming the setting and the valid names.
  """

  def __init__(self, setting):
    self.setting = setting
    self._items = {}

  def register(self, name):
    def add(obj):
      if name in self._items:
        raise ValueError(f'{self.setting}: {name!r} is registered already')
      self._items[name] = obj
      if isinstance(obj, type):
        obj.name = name
      return obj
    return add

  def unregister(self, name):
    """Removes `name` (for tests and interactive sessions)."""
    self._items.pop(name, None)

  def get(self, name):
    if not isinstance(name, str) or name not in self._items:
      raise ConfigError(self.setting, f'unknown value {name!r}; valid: '
                        + ', '.join(repr(n) for n in self._items))
    return self._items[name]

  def names(self):
    return tuple(self._items)

  def __contains__(self, name):
    return name in self._items
