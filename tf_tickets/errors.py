"""Errors that the entrypoints turn into one final line and a non-zero exit,
and the validators every setting goes through (one place, one wording)."""
import numbers
import os
import tempfile


class TicketsError(Exception):
  """Base class of the errors tf_tickets reports to users."""


class ConfigError(TicketsError, ValueError):
  """A setting has a value that is not valid.

  The message names the setting (as it is spelled in gin or on the command
  line) and says what would be valid.
  """

  def __init__(self, setting, message):
    super().__init__(f'{setting}: {message}')
    self.setting = setting


class KerasVersionError(TicketsError, TypeError):
  """A Keras 3 object was given where a tf_keras (Keras 2) object is needed."""


def first_line(e, limit=None):
  """The first line of an exception's message (its type if it has none)."""
  text = str(e).strip()
  return text.splitlines()[0][:limit] if text else type(e).__name__


def check_range(setting, value, low=0.0, high=1.0, low_open=False,
                high_open=True):
  """Raises ConfigError unless `low (<|<=) value (<|<=) high`."""
  try:
    v = float(value)
  except (TypeError, ValueError):
    raise ConfigError(setting, f'expected a number, got {value!r}') from None
  ok_low = v > low if low_open else v >= low
  ok_high = v < high if high_open else v <= high
  if not (ok_low and ok_high):
    lb = '(' if low_open else '['
    hb = ')' if high_open else ']'
    raise ConfigError(setting,
                      f'{value!r} is out of range; valid: {lb}{low}, {high}{hb}')
  return v


def check_choice(setting, value, choices):
  if value not in choices:
    raise ConfigError(
        setting, f'unknown value {value!r}; valid: '
        + ', '.join(repr(c) for c in choices))
  return value


def check_int(setting, value, low=None, allow_none=False):
  """An integer (not a bool) >= `low`; numpy integers allowed."""
  if value is None and allow_none:
    return None
  valid = 'an integer' + (f' >= {low}' if low is not None else '')
  if allow_none:
    valid = 'None or ' + valid
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise ConfigError(setting, f'expected {valid}, got {value!r}')
  if low is not None and value < low:
    raise ConfigError(setting, f'{value!r} is out of range; valid: {valid}')
  return int(value)


def check_bool(setting, value, allow_none=False):
  """True or False (numpy bools allowed), or None if `allow_none`."""
  if value is None and allow_none:
    return None
  if type(value).__name__ not in ('bool', 'bool_'):
    valid = 'True, False or None (auto)' if allow_none else 'True or False'
    raise ConfigError(setting, f'expected {valid}, got {value!r}')
  return bool(value)


def check_mapping(setting, value, what='layer name -> value'):
  """A dict (None is an empty one)."""
  if value is None:
    return {}
  if not isinstance(value, dict):
    raise ConfigError(setting, f'expected a dict {what}, got {value!r}')
  return dict(value)


def check_writable_dir(setting, path):
  """Raises ConfigError unless a directory can be created (or written) at
  `path`: probes the nearest existing directory with a file it removes
  again (a read-only mount, /sys or /proc, a missing permission)."""
  probe = os.path.abspath(path)
  while not os.path.exists(probe):
    probe = os.path.dirname(probe)
  if not os.path.isdir(probe):
    raise ConfigError(setting, f'{path!r} cannot be created: {probe!r} is '
                      'not a directory')
  try:
    fd, name = tempfile.mkstemp(prefix='.tf_tickets-probe-', dir=probe)
    os.close(fd)
    os.remove(name)
  except OSError as e:
    raise ConfigError(setting, f'{path!r} is not writable ({probe!r}: '
                      f'{e.strerror or e}); choose a directory you can '
                      'write to') from None
