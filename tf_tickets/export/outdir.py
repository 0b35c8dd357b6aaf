"""The export directory OUT: checked before anything is written, filled in a
temporary directory beside it, and renamed into place once every check
passed (to `OUT.failed/` otherwise, and OUT is not replaced)."""
import json
import os
import shutil

from tf_tickets import rundir
from tf_tickets.errors import ConfigError
from tf_tickets.export.report import REPORT_FILE
from tf_tickets.export.report import REPORT_FORMAT


def check_output_dir(output_dir, run_dir=None, setting='--output_dir'):
  """Refuses an OUT that is (or holds) the run, or holds other files."""
  out = os.path.abspath(output_dir)
  if run_dir is not None:
    run = os.path.abspath(run_dir)
    if out == run or run.startswith(out + os.sep):
      raise ConfigError(setting, f'{output_dir!r} is the run directory or '
                        'contains it; export into a new directory (default '
                        'RUN/export/level_<N>)')
  if os.path.exists(out):
    if not os.path.isdir(out):
      raise ConfigError(setting, f'{output_dir!r} exists and is not a '
                        'directory')
    if os.listdir(out) and not _is_export_dir(out):
      raise ConfigError(setting, f'{output_dir!r} is not empty and holds no '
                        'earlier export (report.json); use a new or empty '
                        'directory')


def _is_export_dir(path):
  try:
    with open(os.path.join(path, REPORT_FILE)) as f:
      return json.load(f).get('format') == REPORT_FORMAT
  except (OSError, ValueError, AttributeError):
    return False


def prepare(output_dir, run_dir=None, setting='--output_dir'):
  """Checks OUT; returns a fresh temporary directory beside it."""
  check_output_dir(output_dir, run_dir, setting)
  parent = os.path.dirname(os.path.abspath(output_dir))
  os.makedirs(parent, exist_ok=True)
  return rundir.make_temp_dir(parent, prefix='.tmp-export-')


def publish(tmp, output_dir):
  """Replaces OUT (an earlier export, if any) by `tmp`; returns OUT. An
  `OUT.failed` of an earlier export goes: it would contradict OUT."""
  out = os.path.abspath(output_dir)
  if os.path.exists(out):
    shutil.rmtree(out)
  os.replace(tmp, out)
  shutil.rmtree(out + '.failed', ignore_errors=True)
  return out


def set_aside(tmp, output_dir):
  """Moves a failed export `tmp` to `OUT.failed` (replacing an older one)."""
  failed = os.path.abspath(output_dir) + '.failed'
  shutil.rmtree(failed, ignore_errors=True)
  os.replace(tmp, failed)
  return failed
