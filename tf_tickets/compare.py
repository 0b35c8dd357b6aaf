"""`python -m tf_tickets.compare`: paired comparisons of run directories.

Only flags are parsed here; the work is in `tf_tickets.comparing` (the
tables and verdicts) and below (the plot and TensorBoard's HParams view).
"""
import shlex
import sys

from absl import flags

from tf_tickets import console

USAGE = """\
Reads run directories (a sweep's, or any), pairs them by training seed and
writes the tables of a comparison: means ± std, paired differences with
95% t intervals, and the verdict of each claim of a rules file fixed
before the runs ("shown" / "not shown"; an equivalence only by TOST with
the rules' margin). See tf_tickets/comparing.py for the rules format.

usage: python -m tf_tickets.compare --runs=SWEEP_OR_RUN_DIR [--runs=...]
           --rules=RULES.json [--out=DIR]

Writes into DIR (default <first --runs>/compare): comparison.md,
per_seed.csv (every value behind the tables), comparisons.csv, plot.png
and hparams/ (TensorBoard's HParams view:
tensorboard --logdir DIR/hparams). Errors end with one line `error: ...`
and exit status 1."""


def _define_flags():
  flags.DEFINE_multi_string('runs', [], 'a sweep directory or a run '
                            'directory (repeat the flag)')
  flags.DEFINE_string('rules', None, 'the rules file (JSON)')
  flags.DEFINE_string('out', None, 'output directory (default '
                      '<first --runs>/compare)')


def main(argv):
  del argv  # no positional arguments (console.run)
  with console.native_noise_filtered():
    from tf_tickets import reports  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  sys.exit(reports.execute(
      f.runs, f.rules, f.out,
      'python -m tf_tickets.compare ' + shlex.join(sys.argv[1:])))


def run(argv=None):
  _define_flags()
  console.run(main, USAGE, __name__, argv)


if __name__ == '__main__':
  run()
