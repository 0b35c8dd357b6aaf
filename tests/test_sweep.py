"""Sweeps: bad axes, a sweep killed mid-run and rerun (local workers, a
local Ray cluster), the SLURM launcher through submitit's local executor."""
import glob
import os
import signal
import subprocess
import threading
import time

import pytest

import cli
from tf_tickets import rundir

GIN = ('gin/lenet_dense.gin',)
TINY = cli.FIXTURE_PARAMS + ('training.steps = 300',
                             'training.eval_every = 100',
                             'training.checkpoint_every = 20',
                             'dataset.max_train_examples = 600',
                             'summaries.enabled = False')


def _sweep(tmp_path, *flags, params=TINY):
  return cli.command('tf_tickets.sweep', GIN, params,
                     f'--runs_dir={tmp_path / "runs"}',
                     f'--sweep_dir={tmp_path / "sweep"}', *flags)


@pytest.mark.parametrize('flags,setting', [
    (('--vary=training.stpes=[1, 2]',), 'training.stpes'),
    (('--vary=training.steps=[]',), '--vary'),
    (('--vary=sparse_training.sparsity=[0.9, 1.5]',),
     'sparse_training.sparsity'),
    (('--vary=training.steps',), '--vary'),
    (('--seeds=3-x',), '--seeds'),
    (('--launcher=mpi',), '--launcher'),
])
def test_bad_axes_fail_before_anything_runs(tmp_path, flags, setting):
  proc = subprocess.run(_sweep(tmp_path, *flags), env=cli.env(),
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1, proc.stderr[-2000:]
  line = cli.last_line(proc)
  assert line.startswith(f'error: {setting}'), line
  assert not (tmp_path / 'runs').exists() and not (
      tmp_path / 'sweep').exists()


def _points(tmp_path):
  return rundir.read_json(str(tmp_path / 'sweep' / 'manifest.json'))['points']


def _wait_for(pattern, timeout=300):
  deadline = time.time() + timeout
  while time.time() < deadline and not glob.glob(pattern):
    time.sleep(0.05)
  assert glob.glob(pattern), pattern


def _final_mtime(run_dir):
  return os.path.getmtime(os.path.join(run_dir, 'level_0', 'final'))


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_retraining_finished_points(tmp_path):
  """Local workers: the sweep is SIGKILLed (with its training) while the
  second point trains; the same command finishes it and leaves the first
  point alone."""
  proc = subprocess.Popen(_sweep(tmp_path, '--seeds=0-1'), env=cli.env(),
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)
  _wait_for(str(tmp_path / 'sweep' / 'manifest.json'))
  first, second = (p['run_dir'] for p in _points(tmp_path))
  _wait_for(os.path.join(second, 'level_0', 'checkpoints', 'ckpt-*.index'))
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  assert rundir.is_finished(os.path.join(first, 'level_0'))
  assert not rundir.is_finished(os.path.join(second, 'level_0'))
  before = _final_mtime(first)
  again = subprocess.run(_sweep(tmp_path, '--seeds=0-1'), env=cli.env(),
                         capture_output=True, text=True, timeout=600)
  assert again.returncode == 0, again.stderr[-2000:]
  assert '1 point(s) finished already' in again.stdout
  assert rundir.is_finished(os.path.join(second, 'level_0'))
  assert _final_mtime(first) == before
  status = rundir.read_json(str(tmp_path / 'sweep' / 'status.json'))
  assert [status[k]['status'] for k in sorted(status)] == ['done', 'done']


def _kill_training(run_dir):
  """SIGKILLs the training process writing `run_dir` (a Ray worker's)."""
  for pid in os.listdir('/proc'):
    try:
      with open(f'/proc/{pid}/cmdline', 'rb') as f:
        args = f.read().decode(errors='replace').split('\0')
    except OSError:
      continue
    if 'tf_tickets.train' in args and f'--output_dir={run_dir}' in args:
      os.kill(int(pid), signal.SIGKILL)
      return True
  return False


@pytest.mark.slow
def test_ray_sweep_resumes_after_a_killed_worker(tmp_path, monkeypatch):
  """A local Ray cluster (ray.init(num_cpus=2)): one point's training is
  killed mid-run; the sweep reports it and exits 1; rerun, it finishes
  that point and does not retrain the other."""
  ray = pytest.importorskip('ray')
  from tf_tickets import launchers  # pylint: disable=g-import-not-at-top
  from tf_tickets import sweeping  # pylint: disable=g-import-not-at-top
  monkeypatch.chdir(cli.REPO)
  monkeypatch.setenv('PYTHONPATH', cli.env()['PYTHONPATH'])
  ray.init(num_cpus=2, include_dashboard=False)
  try:
    args = dict(gin_files=list(GIN), gin_params=list(TINY), seeds='0-1',
                launcher='ray', runs_dir=str(tmp_path / 'runs'),
                sweep_dir=str(tmp_path / 'sweep'),
                options=launchers.Options(workers=2))
    codes = []
    thread = threading.Thread(target=lambda: codes.append(
        sweeping.execute(**args)))
    thread.start()
    _wait_for(str(tmp_path / 'sweep' / 'manifest.json'))
    first, second = (p['run_dir'] for p in _points(tmp_path))
    _wait_for(os.path.join(second, 'level_0', 'checkpoints', 'ckpt-*.index'))
    assert _kill_training(second)
    thread.join(600)
    assert codes == [1]
    status = rundir.read_json(str(tmp_path / 'sweep' / 'status.json'))
    assert status['1']['status'] == 'failed'
    assert rundir.is_finished(os.path.join(first, 'level_0'))
    before = _final_mtime(first)
    assert sweeping.execute(**args) == 0
    assert rundir.is_finished(os.path.join(second, 'level_0'))
    assert _final_mtime(first) == before
  finally:
    ray.shutdown()


@pytest.mark.slow
def test_slurm_launcher_through_submitit(tmp_path):
  """--launcher=slurm submits a job array through submitit; its local
  executor runs the same array here (no SLURM)."""
  pytest.importorskip('submitit')
  proc = subprocess.run(
      _sweep(tmp_path, '--seeds=0', '--launcher=slurm',
             '--submitit_cluster=local', '--vary=training.steps=[40, 60]'),
      env=cli.env(), capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
  for point in _points(tmp_path):
    assert rundir.is_finished(os.path.join(point['run_dir'], 'level_0'))
  assert glob.glob(str(tmp_path / 'sweep' / 'submitit' / '*'))


def test_the_readme_sweep_commands_are_valid_grids(tmp_path):
  """Every `python -m tf_tickets.sweep` command of the README's "Sweeps and
  paired comparisons", as written (optional [...] flags left out), plans
  a valid grid (--dry_run: every point validated, nothing run)."""
  import re  # pylint: disable=g-import-not-at-top
  import shlex  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  text = open(os.path.join(cli.REPO, 'README.md')).read()
  section = text.split('## Sweeps and paired comparisons', 1)[1].split(
      '\n## ', 1)[0]
  commands = [c for block in re.findall(r'```sh\n(.*?)```', section, re.S)
              for c in block.replace('\\\n', ' ').splitlines()
              if c.startswith('python -m tf_tickets.sweep')]
  assert len(commands) == 3
  for command in commands:
    args = shlex.split(re.sub(r'\[--[^\]]*\]', '', command))[3:]
    args = [a for a in args if not a.startswith('--sweep_dir')]
    args = [a.replace('/usr/share/datasets/fashion-mnist', cli.FIXTURE)
            for a in args]
    proc = subprocess.run(
        [sys.executable, '-m', 'tf_tickets.sweep', *args, '--dry_run',
         f'--runs_dir={tmp_path / "runs"}', f'--sweep_dir={tmp_path / "s"}'],
        cwd=cli.REPO, env=cli.env(), capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r'sweep: \d+ point\(s\)', proc.stdout), proc.stdout
  assert not (tmp_path / 'runs').exists()
