"""What a user sees: progress lines that log lines never run into, one
summary line per network, a results table, --help that lists the flags and
the settings and exits 0 at once, no TensorFlow start-up noise."""
import io
import os
import subprocess
import sys
import time

from absl import logging
import pytest

import cli
from tf_tickets import console
from tf_tickets import experiments  # noqa: F401  (registers the settings)
from tf_tickets import export  # noqa: F401  (registers export.*)
from tf_tickets import settings
from tf_tickets import train
from tf_tickets.training import progress as progress_lib


class Terminal(io.StringIO):

  def isatty(self):
    return True


def test_log_lines_erase_the_progress_line_first(caplog):
  term = Terminal()
  progress = progress_lib.Progress('run/level_1', 0, 100, stream=term)
  progress.update(10, loss=0.5)
  assert term.getvalue().endswith('loss 0.5000')
  logging.warning('a log line')
  # The bar was erased (carriage return + clear line) before the record.
  assert term.getvalue().endswith('loss 0.5000\r\033[K')
  assert 'a log line' in caplog.text
  progress.update(100, loss=0.25, val_acc=0.75)
  progress.done(100)
  assert term.getvalue().endswith('\n')
  last = term.getvalue()[:-1].split('\r\033[K')[-1]
  assert last.startswith('run/level_1  100 steps in ')
  assert 'val_acc 0.7500' in last
  assert term.getvalue().count('steps in') == 1  # one summary line
  logging.warning('after')  # no longer erased: the progress is done
  assert term.getvalue().endswith('\n')


def test_plain_output_prints_a_line_every_tenth():
  out = io.StringIO()
  progress = progress_lib.Progress('x/level_0', 0, 1000, stream=out)
  for step in range(0, 1001, 10):
    progress.update(step, loss=1.0)
  progress.done(1000)
  lines = out.getvalue().splitlines()
  assert len(lines) == 11  # 0, 100, ..., 900 and the summary
  assert '\r' not in out.getvalue()
  assert lines[-1].startswith('x/level_0  1000 steps in')


def test_help_lists_flags_and_every_settings_namespace():
  text = console.help_text(train.USAGE, 'tf_tickets.train')
  for namespace in settings._BY_NAMESPACE:  # pylint: disable=protected-access
    assert f'{namespace}.*' in text, namespace
  for name in ('dataset', 'model'):  # gin functions, not settings classes
    assert f'{name}.*' in text


def test_train_help_exits_0_at_once_with_the_flags():
  t = time.time()
  proc = subprocess.run([sys.executable, '-m', 'tf_tickets.train', '--help'],
                        env=cli.env(), capture_output=True, text=True,
                        check=False, timeout=120)
  elapsed = time.time() - t
  assert proc.returncode == 0, proc.stderr
  assert '--gin_file' in proc.stdout and 'usage' in proc.stdout.lower()
  assert 'lottery.*' in proc.stdout
  assert 'tf_tickets/' not in proc.stdout  # no internal module paths
  assert elapsed < 3.0, elapsed  # TensorFlow is not loaded for --help


@pytest.mark.slow
def test_console_of_a_run_and_of_its_rerun(tmp_path):
  env = cli.env()
  del env['TF_CPP_MIN_LOG_LEVEL']  # as a user has it
  params = cli.FIXTURE_PARAMS + (
      'lottery.levels = 1', 'training.steps = 20', 'training.eval_every = 10',
      "lottery.branch = 'random_reinit'", 'summaries.enabled = False')
  cmd = cli.command('tf_tickets.train', ('gin/lenet_imp.gin',), params,
                    f'--output_dir={tmp_path / "run"}')
  proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                        check=False, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = proc.stdout + proc.stderr
  for noise in ('cuInit', 'oneDNN', 'cpu_feature_guard', 'cudart_stub',
                'absl::InitializeLog'):
    assert noise not in out, noise
  summaries = [l for l in proc.stderr.splitlines() if ' steps in ' in l]
  assert [l.split()[0] for l in summaries] == [
      'run/level_0', 'run/level_1', 'branch_random_reinit/level_1']
  assert '| level | % weights remaining |' in proc.stdout
  branch_csv = os.path.join(tmp_path, 'run', 'branch_random_reinit',
                            'results.csv')
  assert proc.stdout.strip().splitlines()[-1] == f'results: {branch_csv}'
  again = subprocess.run(cmd, env=env, capture_output=True, text=True,
                         check=False, timeout=600)
  assert again.returncode == 0
  assert 'nothing to do' in again.stdout
  assert ' steps in ' not in again.stderr
