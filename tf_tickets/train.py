"""`python -m tf_tickets.train`: the command line of training runs.

Only flags are parsed here; TensorFlow and the package are loaded after
that (`--help` and flag errors answer at once), with TensorFlow's native
start-up noise kept off the console. The work is in `tf_tickets.runner`.
"""
import sys

from absl import flags

from tf_tickets import console

USAGE = """\
Trains what a gin configuration describes: lottery tickets (IMP with
rewinding and control branches), dense baselines, sparse training (RigL,
SET, static, GMP, SNIP) or an instability analysis.

usage: python -m tf_tickets.train --gin_file=gin/lenet_imp.gin
           [--gin_file=...] [--gin_param='lottery.levels = 3' ...]
           [--output_dir=DIR] [--quiet]

Without --output_dir the run goes to runs/<gin file stem>-<config hash>, so
the same command resumes the same run (kill it at any time); a different
configuration is refused rather than mixed into an existing directory.

Settings (bind them in a gin file or with --gin_param; README.md "The gin
surface" and the gin/ files document them):
  experiment.*       kind: 'lottery', 'dense', 'sparse_training', 'stability'
  dataset.*          name, idx_dir (offline IDX files), data_dir, batch_size
  model.*            name: lenet_300_100, conv2/4/6, resnet20, vgg16, ...
  training.*         steps, optimizer, learning_rate, lr_schedule,
                     eval_every, checkpoint_every, strategy, seed
  lottery.*          levels, pruning_fraction, scope, rewind, branch
  sparse_training.*  method, sparsity, distribution, update_every
  gmp.*              gradual magnitude pruning schedule
  stability.*        rewind_steps, points, level, lottery_dir
  summaries.*        TensorBoard summaries
  export.*           formats and quantisation exported after the run
Errors end with one line `error: ...` and exit status 1."""


def _define_flags():
  """The flags, defined when the command runs (not on import)."""
  flags.DEFINE_multi_string('gin_file', [], 'gin file with the configuration')
  flags.DEFINE_multi_string('gin_param', [],
                            "gin binding, e.g. 'lottery.levels = 3'")
  flags.DEFINE_string('output_dir', None, 'run directory (default: runs/'
                      '<gin file stem>-<config hash>)')
  flags.DEFINE_bool('quiet', False, 'no progress lines, warnings only')


def main(argv):
  del argv  # no positional arguments (console.run)
  with console.native_noise_filtered():
    # Loaded after the flags are parsed, so that --help and flag errors do
    # not wait for TensorFlow.
    from tf_tickets import runner  # pylint: disable=g-import-not-at-top
    runner.init_devices()
  f = flags.FLAGS
  sys.exit(runner.main(f.gin_file, f.gin_param, f.output_dir, f.quiet))


def run(argv=None):
  _define_flags()
  console.run(main, USAGE, __name__, argv)


if __name__ == '__main__':
  run()
