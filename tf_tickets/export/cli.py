"""The command line: `python -m tf_tickets.export --run_dir=RUN ...`.

Known errors end the process with one final line `error: ...` on stderr and
exit code 1.
"""
import importlib
import sys

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from tf_tickets.errors import ConfigError
from tf_tickets.errors import TicketsError
from tf_tickets.export.core import export_run
from tf_tickets.export.run import check_run_dir
from tf_tickets.export.run import pick_level
from tf_tickets.export.settings import parse_quantize

FLAGS = flags.FLAGS
_HELP_ARGS = ('--help', '--helpshort', '-?')


def define_flags():
  """Defines the CLI's flags (on use, and only those not yet defined: the
  training entrypoint defines --gin_param, --output_dir and --quiet with the
  same types)."""
  defs = (
      (flags.DEFINE_string, 'run_dir', None,
       'directory of a tf_tickets.train run.'),
      (flags.DEFINE_string, 'level', None,
       'level to export (default: the finished level of lowest density; '
       'level 0 for dense and sparse training runs).'),
      (flags.DEFINE_string, 'output_dir', None,
       'export directory (default RUN/export/level_<N>).'),
      (flags.DEFINE_multi_string, 'quantize', [],
       'quantised variants: none, dynamic, int8, float16 (repeat the flag or '
       'use commas).'),
      (flags.DEFINE_bool, 'c_array', False,
       'also write TFLite Micro C arrays (float32 and, with int8, int8 - '
       'dense storage).'),
      (flags.DEFINE_multi_string, 'gin_param', [],
       'overrides of the run\'s config, e.g. '
       '"dataset.idx_dir=\'/data/mnist\'" when the data moved.'),
      (flags.DEFINE_integer, 'num_examples', 500,
       'test images of the self-checks.'),
      (flags.DEFINE_integer, 'calibration_examples', 300,
       'training images that calibrate int8.'),
      (flags.DEFINE_bool, 'quiet', False, 'warnings only; no report table.'),
  )
  for define, name, default, help_text in defs:
    if name not in FLAGS:
      define(name, default, help_text)


def main(argv):
  """Exports `--run_dir` as the flags say (flags defined and parsed)."""
  if FLAGS.quiet:
    logging.set_verbosity(logging.WARNING)
  tf.get_logger().setLevel('ERROR')
  logging.get_absl_logger().addFilter(
      lambda record: 'functional_saver' not in record.pathname)
  try:
    if len(argv) > 1:
      raise ConfigError('command line', f'unexpected arguments {argv[1:]}; '
                        'use --run_dir=...')
    if FLAGS.num_examples < 1:
      raise ConfigError('--num_examples', 'must be >= 1')
    if FLAGS.calibration_examples < 1:
      raise ConfigError('--calibration_examples', 'must be >= 1')
    quantize = parse_quantize(FLAGS.quantize, '--quantize')
    check_run_dir(FLAGS.run_dir)
    level = pick_level(FLAGS.run_dir, FLAGS.level)
    formats = ('saved_model', 'tflite') + (('c_array',) if FLAGS.c_array
                                            else ())
    export_run(FLAGS.run_dir, level=level, output_dir=FLAGS.output_dir,
               quantize=quantize, formats=formats, gin_params=FLAGS.gin_param,
               num_examples=FLAGS.num_examples,
               calibration_examples=FLAGS.calibration_examples,
               quiet=FLAGS.quiet)
  except TicketsError as e:
    sys.stdout.flush()
    sys.stderr.flush()
    # One line, even when gin appended "In call to configurable ..." lines.
    text = ' '.join(line.strip() for line in str(e).splitlines())
    print(f'error: {text}', file=sys.stderr, flush=True)
    sys.exit(1)


def _parse_flags(argv):
  """absl's flag parsing, except that --help prints the package overview and
  this command's flags and exits 0 (absl's --help exits 1)."""
  if any(a in _HELP_ARGS for a in argv[1:]):
    overview = importlib.import_module('tf_tickets.export').__doc__
    print(f'{overview}\nflags:\n{FLAGS.module_help(__name__)}', flush=True)
    sys.exit(0)
  return app.parse_flags_with_usage(argv)


def run():
  """Defines the flags and runs `main` (`python -m tf_tickets.export`)."""
  define_flags()
  app.run(main, flags_parser=_parse_flags)
