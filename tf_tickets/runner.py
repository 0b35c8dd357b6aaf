"""What `python -m tf_tickets.train` does once its flags are parsed: read
the gin config into one `RunSettings` (validated), pick and check the run
directory, set up the strategy, run the experiment, export, report.

Without --output_dir the run goes to `runs/<gin file stem>-<fingerprint>`,
the fingerprint a hash of the run's identity (`RunSettings.identity`: the
settings that differ from their defaults, without those marked
`settings.resumable`), so the same command resumes the same run; raising
`lottery.levels` (resumable) extends a finished lottery run in place.

Known errors end with one final line `error: ...` and exit status 1; an
existing run directory is never modified before the configuration is
known to match it.
"""

import ast
import hashlib
import json
import os
import shutil
import sys

from absl import logging

import tf_tickets  # noqa: F401  (tf_keras before TensorFlow)
# pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf

from tf_tickets import console
from tf_tickets import experiments
from tf_tickets import export
from tf_tickets import gin_config
from tf_tickets import rundir
from tf_tickets import settings
from tf_tickets import training
from tf_tickets.training import cluster
from tf_tickets.errors import ConfigError
from tf_tickets.errors import TicketsError
from tf_tickets.errors import check_writable_dir
from tf_tickets.errors import first_line


def read_settings(gin_files, gin_params):
  """The run's `RunSettings`, from gin files and bindings (validated)."""
  return experiments.RunSettings.of(gin_config.read(gin_files, gin_params))


def default_run_dir(gin_files, run_settings, base='runs'):
  """`base/<last gin file's stem>-<fingerprint>`."""
  stem = (os.path.splitext(os.path.basename(gin_files[-1]))[0]
          if gin_files else 'run')
  return os.path.join(base, f'{stem}-{run_settings.fingerprint()}')


def _literal(text):
  """A stamp value as a Python value (JSON, else a Python literal)."""
  for parse in (json.loads, ast.literal_eval):
    try:
      return settings.plain(parse(text))
    except (ValueError, SyntaxError, TypeError):
      pass
  return text


def differences(old, new, old_format=False):
  """Sorted names of the settings that differ between two identities; an
  identity of the old format (gin bindings, defaults included) is compared
  value by value, a missing key meaning the setting's default."""
  if not old_format:
    return settings.differing(old, new)
  def value(identity, key):
    if key in identity:
      return _literal(identity[key])
    return settings.plain(settings.default_of(key))
  return sorted(k for k in set(old) | set(new)
                if value(old, k) != value(new, k))


def check_run_dir(run_dir, run_settings):
  """Refuses a directory that holds a different run, is not a directory or
  cannot be written."""
  if os.path.exists(run_dir) and not os.path.isdir(run_dir):
    raise ConfigError('--output_dir', f'{run_dir!r} exists and is not a '
                      'directory')
  check_writable_dir('--output_dir', run_dir)
  stamp = rundir.read_stamp(run_dir)
  if stamp is not None:
    diff = differences(stamp[0], run_settings.identity(), stamp[1])
    if diff:
      raise ConfigError(
          '--output_dir', f'{run_dir!r} holds a run with a different '
          f'configuration (differs in: {", ".join(diff[:6])}'
          f'{", ..." if len(diff) > 6 else ""}); use another --output_dir')
  elif os.path.isdir(run_dir) and os.listdir(run_dir):
    raise ConfigError('--output_dir', f'{run_dir!r} is not empty and holds no '
                      'tf_tickets run (no config.json); use an empty or new '
                      'directory')


def start_run(run_dir, run_settings):
  rundir.write_stamp(run_dir, run_settings.identity(),
                     run_settings.fingerprint(), run_settings.to_json(),
                     config_gin=gin_config.config_text(),
                     operative_gin=gin_config.operative_text())


def make_strategy(config):
  """The strategy of `training.*`, and op determinism if asked for: set
  once here, by the entrypoint."""
  strategy = training.make_strategy(config.strategy, config.worker_timeout)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  return strategy


def execute(gin_files, gin_params, output_dir=None, quiet=False):
  """Runs the configured experiment; returns the exit status.

  The whole configuration (settings, data, model) is validated before the
  run directory is created, and a new run directory is removed again if
  the run fails before it trained anything. Known errors (TicketsError:
  bad settings, data, run directories, checkpoints, lost peer workers)
  print one final line `error: ...` and return 1.

  Several workers (multi_worker_mirrored): every worker checks the run
  directory, then they meet (`start_workers`); only the chief writes the
  shared run directory, the others work in a private shadow of it.
  """
  run_dir, created, existed, shadow = None, False, False, None
  try:
    if not gin_files and not gin_params:
      raise ConfigError('--gin_file', 'give at least one gin file, e.g. '
                        '--gin_file=gin/lenet_imp.gin')
    run_settings = read_settings(gin_files, gin_params)
    run_dir = output_dir or default_run_dir(gin_files, run_settings)
    check_run_dir(run_dir, run_settings)
    ctx = experiments.context(run_dir, run_settings,
                              make_strategy(run_settings.training), quiet)
    workers = training.Workers.of(ctx.strategy)
    existed = os.path.isdir(run_dir)
    created = workers.is_chief and (not existed or not os.listdir(run_dir))
    if workers.is_chief:
      print(f'run directory: {run_dir}', flush=True)
    shadow = start_workers(workers, run_dir, run_settings)
    ctx.run_dir = shadow or run_dir
    try:
      rows = experiments.execute(ctx)
    except tf.errors.OpError as e:
      if not workers.several:
        raise
      raise workers.peer_error(e) from None
    if workers.several:
      agree(workers, ctx.run_dir)
    if workers.is_chief:
      export.after_run(run_dir, run_settings.export, ctx.data,
                       run_settings.model, quiet=ctx.quiet)
    if workers.is_chief:
      report(ctx, rows)
    else:
      print(f'worker {workers.index} of {workers.count}: done; the chief '
            f'wrote the run directory {run_dir}', flush=True)
    return 0
  except TicketsError as e:
    sys.stderr.flush()
    _discard_untrained(run_dir, created, existed)
    # gin appends 'In call to configurable ...' lines; the first line says it.
    print(f'error: {first_line(e)}', file=sys.stderr, flush=True)
    return 1
  except KeyboardInterrupt:
    sys.stderr.flush()
    _discard_untrained(run_dir, created, existed)
    where = training.last_position()
    print(f'\ninterrupted{" in " + where if where else ""}: run the same '
          'command to continue (from the last checkpoint)', file=sys.stderr,
          flush=True)
    return 130
  finally:
    if shadow:
      shutil.rmtree(shadow, ignore_errors=True)


def start_workers(workers, run_dir, run_settings):
  """Stamps the run directory (the chief) once every worker has checked it
  and runs the same configuration; returns the private shadow of the run
  directory a non-chief worker works in (None for the chief).

  Two barriers: nobody changes the directory before every worker has read
  it, and nobody reads it again before the chief has stamped it.
  """
  if not workers.several:
    start_run(run_dir, run_settings)
    return None
  mine = int(run_settings.fingerprint(), 16)
  if len(set(workers.gather(mine))) > 1:
    raise ConfigError('gin config', 'the workers were started with different '
                      'configurations; run the same command (gin files and '
                      '--gin_param) on every worker')
  if workers.is_chief:
    start_run(run_dir, run_settings)
  workers.barrier()
  if workers.is_chief:
    return None
  stamp = rundir.read_stamp(run_dir)
  if stamp is None or stamp[0] != run_settings.identity():
    raise ConfigError('--output_dir', f'worker {workers.index} does not see '
                      f'the run directory the chief created at {run_dir!r}: '
                      'with several workers --output_dir must be on storage '
                      'every worker shares')
  shadow = cluster.make_shadow(run_dir, workers.index)
  logging.info('worker %d of %d: the chief writes %s; this worker writes '
               'its copies to %s (removed at the end)', workers.index,
               workers.count, run_dir, shadow)
  return shadow


def finals_digest(run_dir):
  """A digest of every trained network's final weights below `run_dir`
  (each variable's name and bytes, networks by relative path)."""
  digest = hashlib.sha256()
  for root, _, _ in sorted(os.walk(run_dir)):
    if os.path.basename(root) != rundir.FINAL:
      continue
    digest.update(os.path.relpath(root, run_dir).encode())
    reader = tf.train.load_checkpoint(os.path.join(root, 'weights'))
    for name in sorted(reader.get_variable_to_shape_map()):
      if name != '_CHECKPOINTABLE_OBJECT_GRAPH':
        digest.update(name.encode())
        digest.update(reader.get_tensor(name).tobytes())
  return int(digest.hexdigest()[:15], 16)


def agree(workers, run_dir):
  """Checks that every worker ends with bitwise the same trained networks
  (their masks and weights) as the chief, which wrote them."""
  digests = workers.gather(finals_digest(run_dir))
  if len(set(digests)) > 1:
    raise TicketsError(
        f'training.strategy: the workers ended with different weights '
        f'(digests {digests}); a worker read other data or ran another '
        'program: check that every worker runs the same tf_tickets version '
        'and command')
  if workers.is_chief:
    print(f'workers agree: the final masks and weights are bitwise identical '
          f'on all {workers.count} workers', flush=True)


def report(ctx, rows):
  """The end of a run on the console: a table per results.csv, whether
  anything was trained, and the results file (the branch's, if any) last."""
  sys.stderr.flush()
  for path, table_rows in ctx.results.items():
    print(f'\n{path}:\n'
          f'{experiments.table(table_rows, ctx.settings.experiment.kind)}',
          flush=True)
  if not ctx.trained:
    print(f'\nnothing to do: the {len(rows)} network(s) of this run were '
          'finished already (raise lottery.levels to extend a lottery run)',
          flush=True)
  last = list(ctx.results)[-1] if ctx.results else rundir.results_path(
      ctx.run_dir)
  print(f'results: {last}', flush=True)


def _discard_untrained(run_dir, created, existed):
  """Removes what this invocation wrote into a run directory it created, if
  nothing was trained there (nothing worth keeping)."""
  if created and not rundir.has_training_state(run_dir):
    _remove(run_dir, keep_dir=existed)


def _remove(run_dir, keep_dir):
  """Removes what a failed run wrote (the directory too unless it existed
  before, empty)."""
  if not keep_dir:
    shutil.rmtree(run_dir, ignore_errors=True)
    return
  for name in os.listdir(run_dir):
    path = os.path.join(run_dir, name)
    if os.path.isdir(path):
      shutil.rmtree(path, ignore_errors=True)
    else:
      os.remove(path)


def init_devices():
  """Makes TensorFlow find its devices now (inside the caller's
  `console.native_noise_filtered()`)."""
  tf.config.list_physical_devices()


def main(gin_files, gin_params, output_dir=None, quiet=False):
  """Sets up logging and runs `execute`; returns the exit status."""
  console.plain_log_lines()
  if quiet:
    logging.set_verbosity(logging.WARNING)
  # TensorFlow's checkpoint saver logs every save at INFO through absl.
  logging.get_absl_logger().addFilter(
      lambda record: 'functional_saver' not in record.pathname)
  tf.get_logger().setLevel('ERROR')
  return execute(gin_files, gin_params, output_dir, quiet)
