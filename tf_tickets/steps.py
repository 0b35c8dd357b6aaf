"""One step type for every step setting.

Forms a step setting accepts:

* a count of iterations: `500`, `'500'` or `'500it'`;
* epochs: `'2ep'` (rounded to whole steps with the data's steps per epoch);
* where the setting allows it, a fraction of training: a float in (0, 1]
  such as `0.75` (of the total number of training steps, which already
  include `training.steps_multiplier`).

`Step.resolve(steps_per_epoch, total, multiplier)` turns a parsed step into
a step count. Counts and epochs are multiplied by `multiplier` for the
settings that scale with `training.steps_multiplier` (steps, milestones,
warmup, end steps; not intervals such as `update_every` or `eval_every`).

Interval settings that may also be wall time (`training.checkpoint_every`)
accept a duration: `'60s'`, `'5min'`, `'1h'` (`parse_interval`).
"""
import dataclasses
import numbers
import re

from tf_tickets.errors import ConfigError

_STEP_RE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*(it|ep)?\s*$')
_FORMS = 'steps like 500, "500it" or "2ep"'
_DURATION_RE = re.compile(r'^\s*([-+]?\d*\.?\d+)\s*(s|min|h)\s*$')
_SECONDS = {'s': 1.0, 'min': 60.0, 'h': 3600.0}


@dataclasses.dataclass(frozen=True)
class Step:
  """A parsed step setting: `number` in `unit` ('it', 'ep' or 'frac')."""
  number: float
  unit: str
  setting: str = 'step'

  def resolve(self, steps_per_epoch=1, total=None, multiplier=1.0):
    """The step count (an int >= 0)."""
    if self.unit == 'frac':
      if total is None:
        raise ConfigError(self.setting, 'a fraction of training needs the '
                          'total number of steps')
      return int(round(self.number * total))
    if self.unit == 'ep':
      steps = int(round(self.number * steps_per_epoch))
    else:
      steps = int(self.number)
    if multiplier != 1.0:
      steps = int(round(steps * multiplier))
    return steps


def parse(value, setting, fraction=False, positive=False):
  """Parses a step setting; errors name `setting` and the valid forms.

  Args:
    value: the setting's value.
    setting: its name, for errors.
    fraction: a float in (0, 1] is a fraction of training.
    positive: the step count must be at least 1 (fractions are > 0 anyway).
  """
  forms = (f'a fraction of training in (0, 1], or {_FORMS}' if fraction
           else _FORMS)
  bad = ConfigError(setting, f'expected {forms}, got {value!r}')
  if isinstance(value, bool):
    raise bad
  if fraction and isinstance(value, float) and 0.0 < value <= 1.0:
    return Step(float(value), 'frac', setting)
  if isinstance(value, numbers.Integral):
    number, unit = int(value), 'it'
  elif isinstance(value, float):
    if not value.is_integer():
      raise bad
    number, unit = int(value), 'it'
  elif isinstance(value, str):
    match = _STEP_RE.match(value)
    if not match:
      raise bad
    number, unit = float(match.group(1)), match.group(2) or 'it'
    if unit == 'it':
      if not number.is_integer():
        raise ConfigError(setting, f'iterations must be whole, got {value!r}')
      number = int(number)
  else:
    raise bad
  if number < 0:
    raise ConfigError(setting, f'must be >= 0, got {value!r}')
  step = Step(number, unit, setting)
  if positive and step.resolve(1) < 1 and unit == 'it':
    raise ConfigError(setting, f'must be at least 1 step, got {value!r}')
  return step


def resolve(value, setting, steps_per_epoch=1, total=None, multiplier=1.0,
            fraction=False):
  """`parse(value, setting, fraction).resolve(...)` in one call."""
  return parse(value, setting, fraction=fraction).resolve(
      steps_per_epoch, total, multiplier)


def parse_interval(value, setting):
  """A step setting or a wall-time duration ('60s', '5min', '1h').

  Returns ('seconds', float > 0) or ('steps', Step); errors name `setting`
  and both forms.
  """
  match = _DURATION_RE.match(value) if isinstance(value, str) else None
  forms = f'a positive duration like "60s", "5min" or "1h", or {_FORMS}'
  if match:
    seconds = float(match.group(1)) * _SECONDS[match.group(2)]
    if not seconds > 0:
      raise ConfigError(setting, f'expected {forms}, got {value!r}')
    return 'seconds', seconds
  try:
    return 'steps', parse(value, setting)
  except ConfigError:
    raise ConfigError(setting, f'expected {forms}, got {value!r}') from None
