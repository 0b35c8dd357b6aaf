"""The console progress of one network.

On an interactive terminal one line is redrawn in place (`\\r`); a log
record (absl or Python logging) first erases it, so that log lines never
run into the bar, and the bar comes back at the next update. Elsewhere
(a file, a pipe, CI) a plain line is printed every tenth of the steps.
Either way each network ends with exactly one summary line.
"""
import logging as std_logging
import sys
import time

from absl import logging

_ACTIVE = []  # the progress line currently on the terminal, if any
_LAST = {}  # where the latest progress was: label, step, total
_WIDTH = 24


class _EraseBeforeLogging(std_logging.Filter):
  """Erases the progress line before any log record is written."""

  def filter(self, record):
    for progress in _ACTIVE:
      progress.erase()
    return True


_FILTER = _EraseBeforeLogging()


def _install_filter():
  for handler in (logging.get_absl_handler(),
                  *std_logging.getLogger().handlers):
    if _FILTER not in handler.filters:
      handler.addFilter(_FILTER)


def _fmt(values):
  return '  '.join(f'{k} {v:.4f}' for k, v in values.items()
                   if v is not None)


def last_position():
  """'LABEL at step S of T' of the latest progress shown, or None."""
  if not _LAST:
    return None
  return f'{_LAST["label"]} at step {_LAST["step"]} of {_LAST["total"]}'


class Progress:
  """Progress of training steps `start`..`total` of the network `label`."""

  def __init__(self, label, start, total, stream=None):
    self.label, self.start, self.total = label, int(start), int(total)
    self.stream = stream or sys.stderr
    self.interactive = bool(getattr(self.stream, 'isatty', lambda: False)())
    self.values = dict(loss=None, val_loss=None, val_acc=None)
    self.t0 = time.time()
    self.t1 = None  # when training ended (close)
    self.shown = False
    self.next_plain = self.start
    _install_filter()
    _ACTIVE.append(self)

  def _ms_per_step(self, step):
    done = step - self.start
    return 1000.0 * (time.time() - self.t0) / done if done > 0 else None

  def _line(self, step):
    # Of the whole network: a resumed run's bar starts where it stopped.
    frac = step / max(1, self.total)
    filled = int(round(_WIDTH * frac))
    bar = '=' * filled + ('>' if filled < _WIDTH else '') + '.' * max(
        0, _WIDTH - filled - 1)
    ms = self._ms_per_step(step)
    speed = f'  {ms:.1f} ms/step  ETA {ms * (self.total - step) / 1000:.0f}s' \
        if ms else ''
    return (f'{self.label}  {step}/{self.total} [{bar}] {frac:4.0%}{speed}'
            f'  {_fmt(self.values)}').rstrip()

  def update(self, step, **values):
    """Records `values` (loss, val_acc, ...) at `step` and shows them."""
    self.values.update(values)
    _LAST.update(label=self.label, step=int(step), total=self.total)
    if self.interactive:
      self.stream.write('\r\033[K' + self._line(step))
      self.stream.flush()
      self.shown = True
    elif step >= self.next_plain and step < self.total:
      self.stream.write(self._line(step) + '\n')
      self.stream.flush()
      self.next_plain = step + max(1, (self.total - self.start) // 10)

  def erase(self):
    if self.shown:
      self.stream.write('\r\033[K')
      self.stream.flush()
      self.shown = False

  def close(self):
    """Erases the line and stops erasing it before log records."""
    self.t1 = self.t1 or time.time()
    self.erase()
    if self in _ACTIVE:
      _ACTIVE.remove(self)

  def done(self, step, **values):
    """The one summary line of the network (replaces the bar), with its
    last values and `values` (e.g. density, test_acc)."""
    self.close()
    self.values.update(values)
    steps = step - self.start
    seconds = self.t1 - self.t0
    ms = f' ({1000 * seconds / steps:.1f} ms/step)' if steps > 0 else ''
    self.stream.write(f'{self.label}  {steps} steps in {seconds:.1f} s{ms}'
                      f'  {_fmt(self.values)}\n')
    self.stream.flush()
