"""A sweep: the grid of runs of one configuration (`python -m
tf_tickets.sweep`), its directory, and the job that runs one point.

A point is the configuration (gin files and bindings) plus
`training.seed = s` and one value of every axis (`--vary
"sparse_training.method=['rigl','set']"`). Each point is an ordinary run
of `python -m tf_tickets.train` in `RUNS/<gin stem>-<fingerprint>`, the run
identity of the command line: a rerun of the sweep skips the points that
finished, and the command line resumes interrupted ones from their last
checkpoint. Every point is validated (built into its `RunSettings`) before
anything runs.

    SWEEP/manifest.json   the command, the code commit, the axes and the
                          points (their bindings and run directories)
    SWEEP/status.json     per point: done / failed, exit status, seconds
    SWEEP/logs/point_<i>.log   the console of the point's run
"""
import ast
import dataclasses
import hashlib
import itertools
import os
import subprocess
import sys
import time

from tf_tickets import rundir
from tf_tickets import runner
from tf_tickets.errors import ConfigError

MANIFEST = 'manifest.json'
STATUS = 'status.json'


@dataclasses.dataclass(frozen=True)
class Point:
  """One run of the sweep."""
  index: int
  seed: int
  values: dict  # axis setting -> value
  gin_files: tuple
  params: tuple  # every binding of the run (base, seed, axes)
  run_dir: str


def parse_seeds(text):
  """'0-4' -> [0, 1, 2, 3, 4]; '0,2,5' -> [0, 2, 5]."""
  seeds = []
  try:
    for part in str(text).split(','):
      part = part.strip()
      if '-' in part[1:]:
        lo, hi = part.split('-', 1)
        seeds += range(int(lo), int(hi) + 1)
      elif part:
        seeds.append(int(part))
  except ValueError:
    seeds = None
  if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
    raise ConfigError('--seeds', f'expected distinct seeds >= 0 such as '
                      f'0-4 or 0,2,5; got {text!r}')
  return seeds


def parse_axis(text, where='--vary'):
  """"name=[v1, v2]" -> ('name', [v1, v2]) (Python/gin literals)."""
  name, sep, values = str(text).partition('=')
  name = name.strip()
  try:
    values = ast.literal_eval(values.strip()) if sep else None
  except (ValueError, SyntaxError):
    values = None
  if not name or '.' not in name or not isinstance(values, (list, tuple)):
    raise ConfigError(where, f'expected setting=[values], e.g. '
                      f'"sparse_training.method=[\'rigl\', \'set\']"; got '
                      f'{text!r}')
  if name == 'training.seed':
    raise ConfigError(where, 'the seeds are an axis of their own: use '
                      '--seeds')
  if not values:
    raise ConfigError(where, f'{name}: the axis has no values, so the grid '
                      'is empty')
  return name, list(values)


def read_axes_file(path):
  """Axes from a file of lines `setting = [values]` (# comments)."""
  try:
    with open(path) as f:
      lines = f.read().splitlines()
  except OSError as e:
    raise ConfigError('--axes_file', f'cannot read {path!r}: {e}') from None
  return [parse_axis(line.split('#')[0], f'--axes_file {path}')
          for line in lines if line.split('#')[0].strip()]


def make_points(gin_files, gin_params, seeds, axes, runs_dir):
  """The points of the grid seeds x axes, each validated (its settings
  built as the command line builds them; an invalid value ends here, with
  its setting named)."""
  names = [name for name, _ in axes]
  if len(set(names)) != len(names):
    raise ConfigError('--vary', 'an axis is given twice')
  points, seen = [], {}
  combos = itertools.product(seeds, *[values for _, values in axes])
  for index, (seed, *values) in enumerate(combos):
    params = tuple(gin_params) + (f'training.seed = {seed}',) + tuple(
        f'{name} = {value!r}' for name, value in zip(names, values))
    settings = runner.read_settings(gin_files, params)
    run_dir = os.path.abspath(runner.default_run_dir(gin_files, settings,
                                                     runs_dir))
    if run_dir in seen:
      raise ConfigError('--vary', f'points {seen[run_dir]} and {index} are '
                        'the same run (an axis value equal to another, or '
                        'to the default)')
    seen[run_dir] = index
    points.append(Point(index, seed, dict(zip(names, values)),
                        tuple(os.path.abspath(f) for f in gin_files), params,
                        run_dir))
  return points


def sweep_dir_for(gin_files, points, base='sweeps'):
  """`sweeps/<gin stem>-<hash of the points' run directories>`."""
  stem = (os.path.splitext(os.path.basename(gin_files[-1]))[0]
          if gin_files else 'sweep')
  digest = hashlib.sha256('\n'.join(p.run_dir for p in points).encode())
  return os.path.join(base, f'{stem}-{digest.hexdigest()[:8]}')


def commit():
  """The git commit of the package's source tree ('unknown' outside git)."""
  here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    out = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=here, text=True,
                         capture_output=True, timeout=10, check=True)
    dirty = subprocess.run(['git', 'status', '--porcelain', '--',
                            'tf_tickets'], cwd=here, text=True,
                           capture_output=True, timeout=10).stdout.strip()
    return out.stdout.strip() + ('-dirty' if dirty else '')
  except (OSError, subprocess.SubprocessError):
    return 'unknown'


def write_manifest(sweep_dir, points, axes, command):
  """Creates the sweep directory with its manifest (kept if it exists)."""
  os.makedirs(os.path.join(sweep_dir, 'logs'), exist_ok=True)
  path = os.path.join(sweep_dir, MANIFEST)
  if not os.path.exists(path):
    rundir.write_json(path, dict(
        command=command, commit=commit(), created=time.strftime('%F %T'),
        axes=[[name, values] for name, values in axes],
        points=[dataclasses.asdict(p) for p in points]))


def read_status(sweep_dir):
  path = os.path.join(sweep_dir, STATUS)
  return rundir.read_json(path) if os.path.exists(path) else {}


def write_status(sweep_dir, status):
  rundir.write_json(os.path.join(sweep_dir, STATUS), status)


def is_done(status, point):
  """True if the point finished with these bindings and its run is there."""
  entry = status.get(str(point.index)) or {}
  return (entry.get('status') == 'done'
          and entry.get('params') == list(point.params)
          and rundir.read_stamp(point.run_dir) is not None)


def run_point(point, sweep_dir):
  """Runs one point (`python -m tf_tickets.train`) where this job runs;
  returns {index, returncode, seconds, error}. The sweep directory must be
  visible here: on a cluster it is on storage every node sees."""
  start = time.time()
  log = os.path.join(sweep_dir, 'logs', f'point_{point.index}.log')
  if not os.path.isfile(os.path.join(sweep_dir, MANIFEST)):
    return dict(index=point.index, returncode=2, seconds=0.0, error=(
        f'{os.uname().nodename} does not see the sweep directory '
        f'{sweep_dir!r}: put --sweep_dir and --runs_dir on storage every '
        'node shares'))
  cmd = [sys.executable, '-m', 'tf_tickets.train', '--quiet',
         f'--output_dir={point.run_dir}']
  cmd += [f'--gin_file={f}' for f in point.gin_files]
  cmd += [f'--gin_param={p}' for p in point.params]
  with open(log, 'a') as out:
    out.write(f'\n$ {" ".join(cmd)}\n')
    out.flush()
    code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                          check=False).returncode
  error = None
  if code:
    with open(log) as f:
      lines = [l for l in f.read().splitlines() if l.strip()]
    error = next((l for l in reversed(lines) if l.startswith(
        ('error:', 'interrupted'))), f'exit status {code}')
  return dict(index=point.index, returncode=code,
              seconds=time.time() - start, error=error)
