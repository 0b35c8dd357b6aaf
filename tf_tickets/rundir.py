"""The run directory: its layout, atomic files, weights and results.

Only this module spells out the layout:

    RUN/config.json            the run's identity (the settings that define
                               it) and all its settings (`RunSettings`)
    RUN/config.gin             the gin config as given (command-line runs)
    RUN/operative_config.gin   the settings used, in gin's syntax
    RUN/results.csv            one row per trained network
    RUN/events.out.tfevents.*  the custom-scalars layout
    RUN/lottery/               run-level lottery summaries
    RUN/level_<L>/             one network:
        start/                 its starting weights
        checkpoints/           in-progress checkpoints (removed when done)
        final/                 trained weights (the completion marker,
                               written last and atomically)
        result.json            its results.csv row
    RUN/branch_<name>/         a control branch: results.csv, lottery/,
                               level_<L>/ as above
    RUN/export/level_<L>/      what `tf_tickets.export` writes
    RUN/parent/                stability analysis: the trajectory to max k
    RUN/k_<k>/                 stability analysis at rewind step k: start/
                               (theta_k), copy_<i>/ (networks as above),
                               stability.json (the path; completion marker)

Writes are atomic (a temporary file or directory renamed into place), so a
killed run leaves either the old or the new file, never half of one. Files
and directories get the permissions the umask gives (0644 / 0755 under
umask 022), like files written by any other tool.
"""

import csv
import io
import json
import os
import re
import shutil
import tempfile

import tensorflow as tf

from absl import logging

from tf_tickets.errors import TicketsError
from tf_tickets.errors import first_line

CONFIG_JSON = 'config.json'
CONFIG_GIN = 'config.gin'
OPERATIVE_CONFIG = 'operative_config.gin'
RESULTS = 'results.csv'
RESULT = 'result.json'
START = 'start'
FINAL = 'final'
CHECKPOINTS = 'checkpoints'
LOTTERY_SUMMARIES = 'lottery'
EXPORT = 'export'
_LEVEL_RE = re.compile(r'level_(\d+)')
_CKPT_RE = re.compile(r'ckpt-(\d+)\.index')
_CKPT_FILE_RE = re.compile(r'ckpt-(\d+)\.(index|data-\d+-of-\d+)')

# Columns first in results.csv; per-layer densities follow as density/<key>.
RESULT_COLUMNS = (
    'level', 'branch', 'method', 'seed', 'density', 'sparsity',
    'test_accuracy', 'test_loss', 'val_accuracy', 'val_loss',
    'early_stop_step', 'early_stop_test_accuracy', 'early_stop_val_loss',
    'steps', 'active_weights', 'prunable_weights', 'wall_time')


# ------------------------------------------------------------------------------
# Paths
# ------------------------------------------------------------------------------


def branch_dir(run_dir, branch=None):
  """The directory of a control branch (`run_dir` itself for no branch)."""
  return os.path.join(run_dir, f'branch_{branch}') if branch else run_dir


def level_dir(run_dir, level, branch=None):
  """The directory of one network: `RUN[/branch_<b>]/level_<L>`."""
  return os.path.join(branch_dir(run_dir, branch), f'level_{level}')


def results_path(run_dir, branch=None):
  return os.path.join(branch_dir(run_dir, branch), RESULTS)


def lottery_summaries_dir(run_dir, branch=None):
  return os.path.join(branch_dir(run_dir, branch), LOTTERY_SUMMARIES)


def start_dir(net_dir):
  return os.path.join(net_dir, START)


def final_dir(net_dir):
  return os.path.join(net_dir, FINAL)


def result_path(net_dir):
  return os.path.join(net_dir, RESULT)


def checkpoints_dir(net_dir):
  return os.path.join(net_dir, CHECKPOINTS)


def parent_dir(run_dir):
  return os.path.join(run_dir, 'parent')


def stability_dir(run_dir, k):
  return os.path.join(run_dir, f'k_{k}')


def copy_dir(run_dir, k, i):
  return os.path.join(stability_dir(run_dir, k), f'copy_{i}')


def stability_path(run_dir, k):
  return os.path.join(stability_dir(run_dir, k), 'stability.json')


def export_dir(run_dir, level):
  return os.path.join(run_dir, EXPORT, f'level_{level}')


def config_json_path(run_dir):
  return os.path.join(run_dir, CONFIG_JSON)


def config_gin_path(run_dir):
  return os.path.join(run_dir, CONFIG_GIN)


def operative_config_path(run_dir):
  return os.path.join(run_dir, OPERATIVE_CONFIG)


# ------------------------------------------------------------------------------
# State of a network and of a run
# ------------------------------------------------------------------------------


def is_finished(net_dir):
  """True if the network in `net_dir` is trained (final weights + result)."""
  return (os.path.exists(result_path(net_dir))
          and os.path.exists(final_dir(net_dir)))


def has_start(net_dir):
  return os.path.exists(start_dir(net_dir))


def checkpoint_prefixes(net_dir):
  """Prefixes `.../checkpoints/ckpt-<step>` of the in-progress checkpoints,
  newest first (found from the files, not from the `checkpoint` state file,
  which may itself be damaged)."""
  directory = checkpoints_dir(net_dir)
  if not os.path.isdir(directory):
    return []
  steps = [int(m.group(1)) for m in map(_CKPT_RE.fullmatch,
                                         os.listdir(directory)) if m]
  return [os.path.join(directory, f'ckpt-{s}') for s in sorted(steps)[::-1]]


def has_checkpoint(net_dir):
  return bool(checkpoint_prefixes(net_dir))


def set_aside_checkpoints(net_dir, newer_than):
  """Sets aside the checkpoint files newer than `newer_than` (the newest one
  that reads) and the state file, so that the checkpoint manager continues
  from it."""
  keep = int(newer_than.rsplit('-', 1)[1])
  directory = checkpoints_dir(net_dir)
  for name in sorted(os.listdir(directory)):
    match = _CKPT_FILE_RE.fullmatch(name)
    if name == 'checkpoint' or (match and int(match.group(1)) > keep):
      set_aside(os.path.join(directory, name), 'damaged checkpoint')


def has_training_state(run_dir):
  """True if anything below `run_dir` holds trained weights (a checkpoint or
  a final/ directory): a run directory worth keeping after a failure."""
  return any(FINAL in dirs or any(_CKPT_RE.fullmatch(f) for f in files)
             for _, dirs, files in os.walk(run_dir))


def finished_levels(run_dir):
  """{level: result dict} of the finished networks `RUN/level_<L>`."""
  out = {}
  if not os.path.isdir(run_dir):
    return out
  for name in os.listdir(run_dir):
    match = _LEVEL_RE.fullmatch(name)
    net_dir = os.path.join(run_dir, name)
    if not match or not is_finished(net_dir):
      continue
    try:
      out[int(match.group(1))] = read_json(result_path(net_dir))
    except TicketsError:
      continue
  return out


def read_result(net_dir):
  return read_json(result_path(net_dir))


# ------------------------------------------------------------------------------
# Atomic files
# ------------------------------------------------------------------------------


def _umask():
  """The process umask (read without changing it where /proc allows)."""
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith('Umask:'):
          return int(line.split()[1], 8)
  except (OSError, ValueError, IndexError):
    pass
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def make_temp_dir(parent, prefix='.tmp-'):
  """A temporary directory in `parent` with the umask's permissions
  (`tempfile.mkdtemp` makes it 0700), to be renamed into place."""
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(dir=parent, prefix=prefix)
  os.chmod(tmp, 0o777 & ~_umask())
  return tmp


def atomic_write_text(path, text):
  """Writes `text` to `path` so that readers see the old or the new file."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-')
  try:
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600
    with os.fdopen(fd, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_json(path, value):
  atomic_write_text(path, json.dumps(value, indent=1, sort_keys=True))


def read_json(path):
  """The JSON value in `path`; TicketsError naming it if it does not read."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise TicketsError(f'{path} is unreadable ({type(e).__name__}: '
                       f'{first_line(e)})') from None


def save_weights(model, directory):
  """Writes all model variables (masks, theta_0, rewind point included) to
  `directory` atomically: a temporary directory is renamed into place."""
  tmp = make_temp_dir(os.path.dirname(os.path.abspath(directory)))
  tf.train.Checkpoint(model=model).write(os.path.join(tmp, 'weights'))
  if os.path.exists(directory):
    shutil.rmtree(directory)
  os.replace(tmp, directory)


def load_weights(model, directory):
  """Restores what `save_weights` wrote. Missing, truncated or corrupt files
  raise TicketsError naming the directory (never a traceback); the model's
  variables may then hold a mix of old and read values."""
  prefix = os.path.join(directory, 'weights')
  if not tf.io.gfile.exists(prefix + '.index'):
    raise TicketsError(f'{directory}: no saved weights there (expected '
                       f'{prefix}.index)')
  try:
    tf.train.Checkpoint(model=model).read(
        prefix).assert_existing_objects_matched()
  except Exception as e:  # pylint: disable=broad-except
    # A truncated file raises IndexError, a corrupt one OpError or
    # ValueError, another model AssertionError: all mean "unreadable".
    raise TicketsError(f'{directory}: cannot read saved weights '
                       f'({type(e).__name__}: {first_line(e)}); the files '
                       'are damaged, from another model, or written by a '
                       'tf_tickets version before whole-network rewinding '
                       '(start a new run directory)') from None


def set_aside(path, why):
  """Renames a damaged file or directory to `<path>.damaged-<n>` (kept for
  inspection, out of the way of a rerun) and logs a warning."""
  n = 0
  while os.path.exists(f'{path}.damaged-{n}'):
    n += 1
  os.replace(path, f'{path}.damaged-{n}')
  logging.warning('%s: %s; moved to %s.damaged-%d', path, why, path, n)


def write_stamp(run_dir, identity, fingerprint, settings, config_gin=None,
                operative_gin=None):
  """Creates the run directory with its identity and settings
  (config.json; the identity of an existing stamp is kept, its settings
  updated: resumable ones may change) and, from the command line, the gin
  texts (config.gin as first given, operative_config.gin as last run)."""
  os.makedirs(run_dir, exist_ok=True)
  path = config_json_path(run_dir)
  old = read_json(path) if os.path.exists(path) else {}
  new = {'identity': identity, 'fingerprint': fingerprint, **old,
         'settings': json.loads(json.dumps(settings))}
  if new != old:  # an unchanged run directory is not touched
    write_json(path, new)
  if config_gin is not None and not os.path.exists(config_gin_path(run_dir)):
    atomic_write_text(config_gin_path(run_dir), config_gin)
  op = operative_config_path(run_dir)
  if operative_gin is not None and not (
      os.path.exists(op) and open(op).read() == operative_gin):
    atomic_write_text(op, operative_gin)


def read_stamp(run_dir):
  """(identity, old) of `RUN/config.json` (None: none there); `old`: gin's
  bindings, as written before the settings were typed (Python reprs)."""
  path = config_json_path(run_dir)
  if not os.path.exists(path):
    return None
  stamp = read_json(path)
  if isinstance(stamp, dict) and 'identity' in stamp:
    return stamp['identity'], False
  if isinstance(stamp, dict) and 'bindings' in stamp:
    return stamp['bindings'], True
  raise TicketsError(f'{path} holds no run identity; this directory was not '
                     'written by tf_tickets')


def read_settings(run_dir):
  """{namespace: {field: value}} of `RUN/config.json` (None: none there)."""
  path = config_json_path(run_dir)
  return (read_json(path) if os.path.exists(path) else {}).get('settings')


# ------------------------------------------------------------------------------
# results.csv
# ------------------------------------------------------------------------------


def write_results(path, rows):
  """Writes result dicts as CSV (atomically), fixed columns first."""
  layer_keys = []
  for row in rows:
    for k in row.get('layer_density', {}):
      if k not in layer_keys:
        layer_keys.append(k)
  extra = sorted({k for r in rows for k in r
                  if k not in RESULT_COLUMNS and k != 'layer_density'
                  and not isinstance(r[k], (dict, list))})
  columns = list(RESULT_COLUMNS) + extra + [f'density/{k}' for k in layer_keys]
  buf = io.StringIO()
  out = csv.DictWriter(buf, columns, extrasaction='ignore')
  out.writeheader()
  for row in rows:
    flat = dict(row)
    for k, v in row.get('layer_density', {}).items():
      flat[f'density/{k}'] = v
    out.writerow({k: ('' if flat.get(k) is None else flat.get(k))
                  for k in columns})
  atomic_write_text(path, buf.getvalue())


def read_results(path):
  """The rows of a results.csv as dicts of strings."""
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def find_results(run_dir):
  """results.csv files of a run directory: its own and its branches'."""
  own = results_path(run_dir)
  found = [own] if os.path.isfile(own) else []
  if os.path.isdir(run_dir):
    for name in sorted(os.listdir(run_dir)):
      path = os.path.join(run_dir, name, RESULTS)
      if name.startswith('branch_') and os.path.isfile(path):
        found.append(path)
  return found
