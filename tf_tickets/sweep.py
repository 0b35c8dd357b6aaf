"""`python -m tf_tickets.sweep`: the command line of sweeps.

Only flags are parsed here; TensorFlow and the package are loaded after
that (`--help` and flag errors answer at once). The work is in
`tf_tickets.sweeping`.
"""
import shlex
import sys

from absl import flags

from tf_tickets import console

USAGE = """\
Runs a grid of training runs of one configuration: seeds x axes, one run
directory per point (the run identity of tf_tickets.train, so a rerun skips
finished points and resumes interrupted ones), on local worker processes,
a Ray cluster or SLURM (submitit).

usage: python -m tf_tickets.sweep --gin_file=gin/lenet_rigl.gin
           [--gin_param=...] --seeds=0-4
           [--vary="sparse_training.method=['rigl','set','static']" ...]
           [--axes_file=F] [--launcher=local|ray|slurm] [--workers=N]
           [--runs_dir=runs] [--sweep_dir=D] [--dry_run]

The sweep directory (default sweeps/<gin stem>-<hash of the points>) holds
manifest.json (command, commit, axes, points), status.json and logs/.
With --launcher=ray or slurm, --runs_dir and --sweep_dir must be on storage
every node sees (each job checks it). Compare the runs afterwards with
python -m tf_tickets.compare --runs=<sweep directory> --rules=<rules file>.
Errors end with one line `error: ...` and exit status 1."""


def _define_flags():
  """The flags, defined when the command runs (not on import)."""
  flags.DEFINE_multi_string('gin_file', [], 'gin file of the configuration')
  flags.DEFINE_multi_string('gin_param', [], 'gin binding of every point')
  flags.DEFINE_string('seeds', '0', 'training seeds: 0-4 or 0,2,5')
  flags.DEFINE_multi_string('vary', [], 'an axis: setting=[values]')
  flags.DEFINE_string('axes_file', None, 'a file of axes, one per line: '
                      'setting = [values]')
  flags.DEFINE_string('launcher', 'local', 'local, ray or slurm')
  flags.DEFINE_integer('workers', 1, 'points run at once (local threads, '
                       'a local Ray cluster\'s CPUs, SLURM array parallelism)')
  flags.DEFINE_string('ray_address', None, 'address of a running Ray '
                      'cluster (default: start a local one)')
  flags.DEFINE_string('slurm_partition', None, 'SLURM partition')
  flags.DEFINE_integer('slurm_time', 240, 'SLURM time limit per point, min')
  flags.DEFINE_integer('slurm_cpus', 2, 'CPUs per point under SLURM')
  flags.DEFINE_string('submitit_cluster', None, 'submitit cluster: default '
                      'SLURM; "local" runs the job array as local processes')
  flags.DEFINE_string('runs_dir', 'runs', 'where the points\' run '
                      'directories go')
  flags.DEFINE_string('sweep_dir', None, 'sweep directory (default '
                      'sweeps/<gin stem>-<hash>)')
  flags.DEFINE_bool('dry_run', False, 'list the points and exit')


def main(argv):
  del argv  # no positional arguments (console.run)
  with console.native_noise_filtered():
    # Loaded after the flags are parsed (--help answers at once).
    from tf_tickets import launchers  # pylint: disable=g-import-not-at-top
    from tf_tickets import sweeping  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  options = launchers.Options(
      workers=f.workers, ray_address=f.ray_address,
      slurm_partition=f.slurm_partition, slurm_time=f.slurm_time,
      slurm_cpus=f.slurm_cpus, submitit_cluster=f.submitit_cluster)
  console.plain_log_lines()
  sys.exit(sweeping.execute(
      f.gin_file, f.gin_param, seeds=f.seeds, vary=f.vary,
      axes_file=f.axes_file, launcher=f.launcher, runs_dir=f.runs_dir,
      sweep_dir=f.sweep_dir, options=options, dry_run=f.dry_run,
      command='python -m tf_tickets.sweep ' + shlex.join(sys.argv[1:])))


def run(argv=None):
  _define_flags()
  console.run(main, USAGE, __name__, argv)


if __name__ == '__main__':
  run()
