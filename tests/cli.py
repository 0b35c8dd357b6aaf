"""Helpers to run the entrypoints as a user would, on the fixture data."""
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, 'tests', 'data', 'fashion_mnist_small')

# Small and fast: the fixture, 500 validation examples, few steps.
FIXTURE_PARAMS = (
    "dataset.name = 'fashion_mnist'",
    f"dataset.idx_dir = '{FIXTURE}'",
    'dataset.validation_examples = 500',
)


def settings(gin_files=(), params=()):
  """The `RunSettings` the command line builds from gin files and bindings
  (through the entrypoints' gin adapter)."""
  from tf_tickets import runner  # pylint: disable=g-import-not-at-top
  return runner.read_settings(list(gin_files), list(params))


def env():
  e = dict(os.environ)
  e['PYTHONPATH'] = os.pathsep.join(
      [REPO, os.path.join(REPO, 'tests', 'plugins'), e.get('PYTHONPATH', '')])
  e['TF_CPP_MIN_LOG_LEVEL'] = '3'
  e['CUDA_VISIBLE_DEVICES'] = ''
  return e


def command(module, gin_files=(), params=(), *flags):
  cmd = [sys.executable, '-m', module]
  cmd += [f'--gin_file={os.path.join(REPO, f)}' if not os.path.isabs(f)
          else f'--gin_file={f}' for f in gin_files]
  cmd += [f'--gin_param={p}' for p in params]
  cmd += list(flags)
  return cmd


def run(module, gin_files=(), params=(), *flags, cwd=None, timeout=600):
  """Runs `python -m module ...`; returns the CompletedProcess."""
  return subprocess.run(command(module, gin_files, params, *flags), cwd=cwd,
                        env=env(), capture_output=True, text=True,
                        timeout=timeout, check=False)


def train(gin_files=('gin/lenet_imp.gin',), params=(), *flags, **kw):
  return run('tf_tickets.train', gin_files, FIXTURE_PARAMS + tuple(params),
             *flags, **kw)


def last_line(proc):
  lines = [l for l in (proc.stderr.strip() + '\n' + proc.stdout.strip()
                       ).splitlines() if l.strip()]
  errors = [l for l in proc.stderr.strip().splitlines() if l.strip()]
  return errors[-1] if errors else (lines[-1] if lines else '')


def train_and_kill(gin_file, params, output_dir, wait_for, timeout=300):
  """Starts a training run and SIGKILLs it as soon as `wait_for` (a glob
  below `output_dir`) matches a file, e.g. a checkpoint mid-level."""
  gin_files = (gin_file,) if isinstance(gin_file, str) else tuple(gin_file)
  proc = subprocess.Popen(
      command('tf_tickets.train', gin_files, FIXTURE_PARAMS + tuple(params),
              f'--output_dir={output_dir}', '--quiet'),
      env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
      cwd=REPO)
  deadline = time.time() + timeout
  while time.time() < deadline and proc.poll() is None and not glob.glob(
      os.path.join(str(output_dir), wait_for)):
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()


def free_ports(n):
  """`n` TCP ports on 127.0.0.1 that were free a moment ago."""
  socks = [socket.socket() for _ in range(n)]
  try:
    for s in socks:
      s.bind(('127.0.0.1', 0))
    return [s.getsockname()[1] for s in socks]
  finally:
    for s in socks:
      s.close()


class Workers:
  """`python -m tf_tickets.train` as the workers of one TF_CONFIG cluster on
  127.0.0.1 (multi_worker_mirrored, one CPU replica each); every process is
  SIGKILLed at the latest after `timeout` seconds."""

  def __init__(self, gin_file, params, output_dir, count=2, indices=None,
               timeout=120, tmpdir=None):
    addresses = [f'127.0.0.1:{p}' for p in free_ports(count)]
    params = FIXTURE_PARAMS + tuple(params) + (
        "training.strategy = 'multi_worker_mirrored'",)
    self.deadline = time.time() + timeout
    self.procs = []
    # Where a non-chief keeps its private copies: beside the run directory
    # by default, so that a killed worker's copy goes with the test's files.
    tmpdir = tmpdir or os.path.join(os.path.dirname(str(output_dir)), 'tmp')
    os.makedirs(tmpdir, exist_ok=True)
    for i in range(count) if indices is None else indices:
      e = env()
      e['TMPDIR'] = str(tmpdir)
      e['TF_CONFIG'] = json.dumps({'cluster': {'worker': addresses},
                                   'task': {'type': 'worker', 'index': i}})
      self.procs.append(subprocess.Popen(
          command('tf_tickets.train', (gin_file,), params,
                  f'--output_dir={output_dir}', '--quiet'),
          env=e, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
          text=True))

  def wait(self):
    """Waits for every worker (killing those past the deadline); returns
    [(returncode, stdout, stderr)] in worker order."""
    out = []
    for proc in self.procs:
      try:
        stdout, stderr = proc.communicate(
            timeout=max(1.0, self.deadline - time.time()))
      except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        stderr += '\n[killed at the deadline]'
      out.append((proc.returncode, stdout, stderr))
    return out

  def kill_when(self, pattern, which=None):
    """SIGKILLs the workers `which` (all by default) once the glob `pattern`
    matches a file (or at the deadline)."""
    while time.time() < self.deadline and not glob.glob(pattern) and all(
        p.poll() is None for p in self.procs):
      time.sleep(0.05)
    for i, proc in enumerate(self.procs):
      if which is None or i in which:
        proc.send_signal(signal.SIGKILL)
