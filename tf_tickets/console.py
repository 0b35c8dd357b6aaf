"""What the command lines share before TensorFlow is loaded: `--help` that
lists a command's own flags and exits 0, and TensorFlow's native start-up
noise kept off the console.

Nothing here imports TensorFlow: `--help` and flag errors answer at once,
and `native_noise_filtered()` must be entered before TensorFlow is.
"""
import contextlib
import logging as std_logging
import os
import re
import signal
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging

HELP_ARGS = ('--help', '-help', '-h', '-?', '--h')

# Lines TensorFlow's C++ runtime prints at import and device set-up on any
# machine, before its log level applies. A failed cuInit is only noise on a
# machine without an NVIDIA driver; with one it is kept (it says why the
# GPU is not used).
_NOISE = re.compile(
    r'WARNING: All log messages before absl::InitializeLog\(\) is called'
    r'|[IW]\d{4} [\d:. ]+\d+ (port|cudart_stub|cpu_feature_guard)\.cc:\d+\]'
    r'|To enable the following instructions: .* rebuild TensorFlow')
_CUINIT = re.compile(r'E\d{4} [\d:. ]+\d+ cuda_\w+\.cc:\d+\] failed call to '
                     r'cuInit')


def _is_noise(line, gpu_driver):
  return bool(_NOISE.match(line)) or (not gpu_driver and
                                      bool(_CUINIT.match(line)))


@contextlib.contextmanager
def native_noise_filtered():
  """Captures file descriptor 2 while TensorFlow loads and finds its devices
  (enter before importing it), then writes back every line but the known
  start-up noise."""
  gpu_driver = os.path.exists('/proc/driver/nvidia')
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as capture:
    os.dup2(capture.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      capture.seek(0)
      text = capture.read().decode('utf-8', errors='replace')
      sys.stderr.write(''.join(line for line in text.splitlines(True)
                               if not _is_noise(line, gpu_driver)))
      sys.stderr.flush()


class _PlainFormatter(std_logging.Formatter):
  """A log record as its message ('warning: ...' at WARNING and above),
  without absl's 'I1207 12:14:15.429972 1234 file.py:241]' prefix."""

  def format(self, record):
    message = record.getMessage()
    if record.levelno >= std_logging.WARNING:
      message = f'{record.levelname.lower()}: {message}'
    if record.exc_info:
      message += '\n' + self.formatException(record.exc_info)
    return message


def plain_log_lines():
  """Makes absl's log lines plain messages (the command lines call this)."""
  logging.get_absl_handler().setFormatter(_PlainFormatter())


def help_text(usage, module_name):
  """`usage` followed by the flags `module_name` defines, one per line."""
  lines = [usage.strip(), '', 'flags:']
  for flag in sorted(flags.FLAGS.get_flags_for_module(module_name),
                     key=lambda f: f.name):
    kind = f' ({flag.flag_type()})' if flag.flag_type() in (
        'int', 'float', 'bool') else ''
    value = str(flag.default).lower() if isinstance(flag.default, bool) else (
        flag.default)
    default = '' if value in (None, [], '') else f' (default: {value})'
    repeat = ' (repeatable)' if isinstance(flag.default, list) else ''
    text = flag.help.split(';\n')[0]  # absl appends "repeat this option..."
    lines.append(f'  --{flag.name}{kind}: {text}{repeat}{default}')
  lines += ['  --helpfull: all flags, absl and TensorFlow ones included']
  return '\n'.join(lines)


def run(main, usage, module_name, argv=None):
  """Parses the flags (`--help`: `help_text`, exit 0) and runs `main`
  (positional arguments: one error line, exit 2); Ctrl-C ends it with one
  line and exit status 130, no traceback."""
  argv = list(sys.argv if argv is None else argv)
  # A launcher may start us with SIGINT blocked or ignored (both survive
  # exec: threads of some runtimes block it; a shell's background jobs
  # ignore it): Ctrl-C must still stop the command.
  signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
  signal.signal(signal.SIGINT, signal.default_int_handler)

  def parse(args):
    if any(a in HELP_ARGS for a in args[1:]):
      print(help_text(usage, module_name), flush=True)
      sys.exit(0)
    return app.parse_flags_with_usage(args)

  def without_arguments(args):
    if len(args) > 1:
      print(f'error: unexpected arguments {args[1:]}; see --help',
            file=sys.stderr)
      sys.exit(2)
    return main(args)

  try:
    app.run(without_arguments, argv=argv, flags_parser=parse)
  except KeyboardInterrupt:  # before or after the command's own handler
    print('\ninterrupted', file=sys.stderr, flush=True)
    sys.exit(130)
