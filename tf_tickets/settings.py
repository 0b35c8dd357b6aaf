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
import dataclasses

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
