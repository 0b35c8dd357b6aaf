"""One style for settings: a frozen dataclass per gin namespace.

    @settings.gin_settings('lottery')
    class LotterySettings(settings.Settings):
      levels: int = 0
      ...
      def validate(self):
        self.set('levels', check_int('lottery.levels', self.levels, 0))

Defaults are written once (the fields), gin binds `lottery.levels` etc.
when the class is called without that argument, and `validate` (run on
construction) checks and normalises every field through the shared
validators in `tf_tickets.errors`. `replace(**changes)` returns a validated
copy.
"""
import contextlib
import dataclasses
import difflib
import inspect
import logging as std_logging
import os
import re

import gin

from tf_tickets.errors import ConfigError


class Settings:
  """Base of the settings dataclasses."""

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
    return dataclasses.asdict(self)


_BY_NAMESPACE = {}


def resumable(default):
  """A field that only extends or displays a run (e.g. `lottery.levels`,
  `summaries.every`): it stays out of the run's identity, so changing it
  resumes or extends the run directory in place (`resumable_settings`)."""
  return dataclasses.field(default=default, metadata={'resumable': True})


def resumable_settings():
  """{(namespace, field)} of every field marked `resumable`."""
  return {(namespace, f.name) for namespace, cls in _BY_NAMESPACE.items()
          for f in dataclasses.fields(cls) if f.metadata.get('resumable')}


def gin_settings(namespace):
  """Class decorator: a frozen dataclass configurable as `namespace.*`."""
  def decorate(cls):
    cls = gin.configurable(namespace)(dataclasses.dataclass(frozen=True)(cls))
    _BY_NAMESPACE[namespace] = cls
    return cls
  return decorate


def bound_namespaces():
  """The namespaces that the parsed gin config binds parameters of."""
  config = gin.config._CONFIG  # pylint: disable=protected-access
  return sorted({selector.split('.')[-1] for _, selector in config})


def validate_bound():
  """Validates every settings class whose namespace the config binds (so a
  bad value fails before anything is written, whichever part of the run
  reads it); unbound ones keep their valid defaults."""
  for namespace in bound_namespaces():
    if namespace in _BY_NAMESPACE:
      _BY_NAMESPACE[namespace]()


@contextlib.contextmanager
def own_config():
  """Runs the block with gin's configuration of its own (e.g. a finished
  run's, parsed by the export) and puts the caller's back afterwards:
  bindings, imports, singletons, the operative record and the lock."""
  c = gin.config
  saved = ({k: dict(v) for k, v in c._CONFIG.items()},  # pylint: disable=protected-access
           dict(c._SINGLETONS), set(c._IMPORTS),  # pylint: disable=protected-access
           dict(c._OPERATIVE_CONFIG), c._CONFIG_IS_LOCKED)  # pylint: disable=protected-access
  try:
    yield
  finally:
    config, singletons, imports, operative, locked = saved
    gin.clear_config()
    c._CONFIG.update(config)  # pylint: disable=protected-access
    c._SINGLETONS.update(singletons)  # pylint: disable=protected-access
    c._IMPORTS.update(imports)  # pylint: disable=protected-access
    c._OPERATIVE_CONFIG.update(operative)  # pylint: disable=protected-access
    c._set_config_is_locked(locked)  # pylint: disable=protected-access


def _not_path_not_found(record):
  """gin's package-resource reader logs a spurious error for every search
  path a relative include is not found in before the one it is found in."""
  return not record.getMessage().startswith('Path not found')


def parse_config(gin_files, gin_params):
  """Parses gin files, then bindings, one source at a time, so that an
  error names its setting, its one source and, for a misspelt name, the
  names gin knows (`did you mean ...`)."""
  for path in gin_files:
    if not os.path.isfile(path):
      raise ConfigError('--gin_file', f'{path!r} does not exist or is not a '
                        'file')
    try:
      with open(path) as f:
        f.read()
    except OSError as e:
      raise ConfigError('--gin_file', f'cannot read {path!r}: {e}') from None
  root = std_logging.getLogger()
  if _not_path_not_found not in root.filters:  # once per process
    root.addFilter(_not_path_not_found)
  for path in gin_files:  # `include 'x.gin'` resolves beside the includer
    gin.add_config_file_search_path(os.path.dirname(os.path.abspath(path)))
  sources = [(path, lambda p=path: gin.parse_config_file(p))
             for path in gin_files]
  sources += [(f'--gin_param {b!r}', lambda b=b: gin.parse_config(b))
              for b in gin_params]
  for where, parse in sources:
    try:
      parse()
    except (ValueError, SyntaxError, KeyError, ImportError, TypeError,
            NameError) as e:
      raise _gin_error(e, where) from None


_UNKNOWN_PARAM = re.compile(
    r"Configurable '([\w.]+)' doesn't have a parameter named '(\w+)'")
_UNKNOWN_NAME = re.compile(r"No configurable matching '([\w./]+)'")


def _gin_error(e, where):
  """A ConfigError naming the setting of a gin parse error."""
  lines = str(e).strip().splitlines()
  line = re.search(r', line (\d+)', str(e))
  if line and not where.startswith('--gin_param'):
    where += f' line {line.group(1)}'
  unknown_param = _UNKNOWN_PARAM.search(lines[0] if lines else '')
  unknown_name = _UNKNOWN_NAME.search(lines[0] if lines else '')
  if unknown_param:
    namespace, param = unknown_param.groups()
    setting = f'{namespace}.{param}'
    valid = [f'{namespace}.{p}' for p in _parameters(namespace)]
    return ConfigError(setting, f'unknown setting (in {where})'
                       + _did_you_mean(setting, valid))
  if unknown_name:
    name = unknown_name.group(1)
    valid = sorted({selector.split('.')[-1] for selector, _ in
                    gin.config._REGISTRY.items()  # pylint: disable=protected-access
                    if not selector.startswith('gin.')})
    return ConfigError(name, f'unknown settings namespace (in {where})'
                       + _did_you_mean(name.split('.')[0], valid))
  text = ' '.join(l.strip() for l in lines[:1]) or type(e).__name__
  return ConfigError('gin config', f'{text} (in {where})')


def _parameters(namespace):
  try:
    configurable = gin.config._REGISTRY.get_match(namespace)  # pylint: disable=protected-access
  except (KeyError, ValueError):
    return []
  return list(inspect.signature(configurable.wrapped).parameters) \
      if configurable else []


def _did_you_mean(name, valid):
  close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
  hint = f'; did you mean {" or ".join(close)}?' if close else ''
  return hint + f' (valid: {", ".join(valid)})' if valid else hint


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
