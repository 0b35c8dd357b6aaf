"""The command line: `python -m tf_tickets.export --run_dir=RUN ...`.

Only flags are parsed here; TensorFlow and the export are loaded after that
(`--help` and flag errors answer at once). Known errors end the process with
one final line `error: ...` on stderr and exit code 1.
"""
import sys

from absl import app
from absl import flags
from absl import logging

from tf_tickets import console
from tf_tickets.errors import ConfigError
from tf_tickets.errors import TicketsError
from tf_tickets.export.settings import parse_quantize

FLAGS = flags.FLAGS
_HELP_ARGS = console.HELP_ARGS + ('--helpshort',)

USAGE = """\
Exports a finished run's network for edge devices: SavedModel, TFLite with
sparse weight storage (and quantised variants), TFLite Micro C arrays, each
checked against the Keras model and on LiteRT's interpreter.

usage: python -m tf_tickets.export --run_dir=RUN [--level=N]
           [--output_dir=OUT] [--quantize=dynamic,int8,float16] [--c_array]
           [--compact]

Writes into OUT (default RUN/export/level_<N>) and prints the report (also
OUT/report.json): sizes, parity, sparsity, and the LiteRT runtime option a
.tflite needs when it does not run with the interpreter's defaults.
To export at the end of a training run instead, bind the gin settings
export.formats and export.quantize (README.md "Export").
Errors end with one line `error: ...` and exit status 1."""


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
       'also write TFLite Micro C arrays of the dense-storage float32 and '
       '(with int8) int8 models: TFLite Micro has no sparse tensors.'),
      (flags.DEFINE_bool, 'compact', False,
       'also write the compact network (empty units and channels removed, '
       'a smaller dense network) in OUT/compact/, with its widths, '
       'multiply-adds and parity.'),
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
  console.plain_log_lines()
  if FLAGS.quiet:
    logging.set_verbosity(logging.WARNING)
  logging.get_absl_logger().addFilter(
      lambda record: 'functional_saver' not in record.pathname)
  try:
    if len(argv) > 1:
      raise ConfigError('command line', f'unexpected arguments {argv[1:]}; '
                        'use --run_dir=... (see --help)')
    if FLAGS.num_examples < 1:
      raise ConfigError('--num_examples', 'must be >= 1')
    if FLAGS.calibration_examples < 1:
      raise ConfigError('--calibration_examples', 'must be >= 1')
    quantize = parse_quantize(FLAGS.quantize, '--quantize')
    with console.native_noise_filtered():
      # Loaded after the flags are parsed: --help and flag errors do not
      # wait for TensorFlow.
      # pylint: disable=g-import-not-at-top
      import tensorflow as tf
      from tf_tickets import gin_config
      from tf_tickets import rundir
      from tf_tickets.export import core
      from tf_tickets.export import run as run_lib
    tf.get_logger().setLevel('ERROR')
    run_lib.check_run_dir(FLAGS.run_dir)
    level = run_lib.pick_level(FLAGS.run_dir, FLAGS.level)
    formats = (('saved_model', 'tflite')
               + (('c_array',) if FLAGS.c_array else ())
               + (('compact',) if FLAGS.compact else ()))
    # The run's own gin (its imports, the bindings of your own functions),
    # then its settings from config.json with --gin_param applied; a run
    # of an older tf_tickets has its settings in operative_config.gin only.
    data = model_cfg = None
    gin_config.parse_run_config(FLAGS.run_dir)
    overrides = gin_config.overrides(FLAGS.gin_param)
    if rundir.read_settings(FLAGS.run_dir) is None:
      sections = gin_config.read_operative(FLAGS.run_dir, FLAGS.gin_param)
      model_cfg = sections['model']
      data = run_lib.load_run_dataset(sections['dataset'])
    core.export_run(FLAGS.run_dir, level=level, output_dir=FLAGS.output_dir,
                    quantize=quantize, formats=formats, data=data,
                    model_cfg=model_cfg, overrides=overrides,
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
  """absl's flag parsing, except that --help prints USAGE and this
  command's flags and exits 0 (absl's --help exits 1)."""
  if any(a in _HELP_ARGS for a in argv[1:]):
    print(console.help_text(USAGE, __name__), flush=True)
    sys.exit(0)
  return app.parse_flags_with_usage(argv)


def run():
  """Defines the flags and runs `main` (`python -m tf_tickets.export`)."""
  define_flags()
  app.run(main, flags_parser=_parse_flags)
