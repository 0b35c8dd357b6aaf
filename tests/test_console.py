"""What a user sees: progress lines that log lines never run into, one
summary line per network, a results table, --help that lists the flags and
the settings and exits 0 at once, no TensorFlow start-up noise."""
import io
import os
import re
import signal
import subprocess
import sys
import time

from absl import logging
import pytest

import cli
from tf_tickets import console
from tf_tickets import experiments  # noqa: F401  (registers the settings)
from tf_tickets import export  # noqa: F401  (registers export.*)
from tf_tickets import rundir
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
  assert 'export' in settings.SECTIONS
  for namespace in settings.SECTIONS:
    assert f'{namespace}.*' in text, namespace


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


def test_resumed_progress_shows_the_whole_networks_fraction():
  out = io.StringIO()
  progress = progress_lib.Progress('x/level_0', 45000, 50000, stream=out)
  progress.update(45100, loss=1.0)
  assert '45100/50000 [' in out.getvalue() and ' 90%' in out.getvalue()
  assert progress_lib.last_position() == 'x/level_0 at step 45100 of 50000'
  progress.done(50000, density=0.0358, test_acc=0.88)
  last = out.getvalue().splitlines()[-1]
  assert last.startswith('x/level_0  5000 steps in ')
  assert last.endswith('density 0.0358  test_acc 0.8800')


def test_log_lines_are_plain_messages():
  import logging as std_logging  # pylint: disable=g-import-not-at-top
  console.plain_log_lines()
  handler = logging.get_absl_handler()

  def line(level, msg):
    return handler.format(std_logging.LogRecord(
        'absl', level, 'lottery.py', 241, msg, (), None))
  assert line(std_logging.INFO, 'lottery level 3 (network 4 of 16)') == (
      'lottery level 3 (network 4 of 16)')
  assert line(std_logging.WARNING, 'careful') == 'warning: careful'


def test_help_names_only_settings_that_exist():
  """Every `namespace.*  a, b, c` line of --help names real settings."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  lines, namespace = train.USAGE.split('Settings')[1].splitlines(), None
  checked = 0
  for line in lines:
    head = line.split()
    if head and head[0].endswith('.*'):
      namespace, names = head[0][:-2], line.split(None, 1)[1]
    elif namespace and line.startswith(' ' * 10):
      names = line
    else:
      namespace = None
      continue
    params = [f.name for f in dataclasses.fields(settings.SECTIONS[namespace])]
    for word in names.split(','):
      word = word.strip().split(':')[-1].strip()
      if word and word.isidentifier() and word not in ('name',) + tuple(
          params) and namespace not in ('experiment', 'model'):
        raise AssertionError(f'--help names {namespace}.{word}')
      checked += word in params
  assert checked >= 20


@pytest.mark.parametrize('binding,line', [
    ('training.stpes = 5', "error: training.stpes: unknown setting (in "
     "--gin_param 'training.stpes = 5'); did you mean training.steps"),
    ('trainin.steps = 5', "error: trainin: unknown settings namespace (in "
     "--gin_param 'trainin.steps = 5'); did you mean training"),
])
def test_a_gin_typo_names_its_one_source_and_the_valid_names(
    tmp_path, capsys, binding, line):
  from tf_tickets import runner  # pylint: disable=g-import-not-at-top
  gin_file = os.path.join(cli.REPO, 'gin', 'lenet_imp.gin')
  assert runner.execute([gin_file], [binding], str(tmp_path / 'run')) == 1
  err = capsys.readouterr().err.strip().splitlines()[-1]
  assert err.startswith(line), err
  assert gin_file not in err  # not every gin source again
  assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('output_dir', ['/sys/tf_tickets_run',
                                        '/proc/tf_tickets/run'])
def test_an_unwritable_output_dir_is_one_error_line(output_dir):
  proc = cli.train(('gin/lenet_imp.gin',), (), f'--output_dir={output_dir}',
                   timeout=120)
  assert proc.returncode == 1
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert lines[-1].startswith(f"error: --output_dir: '{output_dir}' is not "
                              'writable'), proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr
  assert 'run directory:' not in proc.stdout + proc.stderr


def _sigint_blocked_and_ignored():
  """The child starts as under a launcher that blocks and ignores SIGINT
  (both survive exec); the command must still stop on Ctrl-C."""
  signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
  signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
def test_ctrl_c_during_a_run_is_one_line_and_the_same_command_continues(
    tmp_path):
  run_dir = tmp_path / 'run'
  params = ('lottery.levels = 1', 'training.steps = 100000',
            'training.checkpoint_every = 200', 'summaries.enabled = False')
  proc = subprocess.Popen(
      cli.command('tf_tickets.train', ('gin/lenet_imp.gin',),
                  cli.FIXTURE_PARAMS + params, f'--output_dir={run_dir}'),
      env=cli.env(), cwd=cli.REPO, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_blocked_and_ignored)
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None and not list(
      (run_dir / 'level_0').glob('checkpoints/ckpt-*.index')):
    time.sleep(0.05)
  time.sleep(0.5)
  proc.send_signal(signal.SIGINT)
  stdout, stderr = proc.communicate(timeout=120)
  assert proc.returncode == 130, stderr[-3000:]
  assert 'Traceback' not in stderr and 'KeyboardInterrupt' not in stderr
  tail = stderr[stderr.index('interrupted'):].strip().splitlines()
  assert len(tail) == 1, stderr[-2000:]
  assert re.fullmatch(r'interrupted in run/level_0 at step \d+ of 100000: '
                      r'run the same command to continue \(from the last '
                      r'checkpoint\)', tail[0]), tail
  assert rundir.has_checkpoint(str(run_dir / 'level_0')), stdout
