"""What `python -m tf_tickets.sweep` does once its flags are parsed: build
and validate the grid (`tf_tickets.grid`), write the sweep directory, run
the points not done yet on a launcher (`tf_tickets.launchers`), record
their status and report. Known errors end with one `error:` line and exit
status 1 before anything runs; a sweep with failed points exits 1 after
naming them (rerun the command to resume them)."""
import os
import shlex
import sys
import time

from tf_tickets import grid
from tf_tickets import launchers
from tf_tickets.errors import ConfigError
from tf_tickets.errors import TicketsError
from tf_tickets.errors import check_int
from tf_tickets.errors import check_writable_dir


def plan(gin_files, gin_params, seeds, vary, axes_file, runs_dir,
         sweep_dir=None):
  """(points, axes, sweep_dir) of a sweep, every point validated."""
  if not gin_files:
    raise ConfigError('--gin_file', 'give the configuration to sweep, e.g. '
                      '--gin_file=gin/lenet_rigl.gin')
  axes = [grid.parse_axis(v) for v in vary]
  if axes_file:
    axes += grid.read_axes_file(axes_file)
  check_writable_dir('--runs_dir', runs_dir)
  points = grid.make_points(gin_files, gin_params, grid.parse_seeds(seeds),
                            axes, runs_dir)
  sweep_dir = sweep_dir or grid.sweep_dir_for(gin_files, points)
  check_writable_dir('--sweep_dir', sweep_dir)
  return points, axes, sweep_dir


def execute(gin_files, gin_params, seeds='0', vary=(), axes_file=None,
            launcher='local', runs_dir='runs', sweep_dir=None,
            options=None, dry_run=False, command=None):
  """Runs the sweep; returns the exit status (see the module docstring)."""
  try:
    options = options or launchers.Options()
    check_int('--workers', options.workers, 1)
    run = launchers.LAUNCHERS.get(launcher)
    points, axes, sweep_dir = plan(gin_files, gin_params, seeds, vary,
                                   axes_file, runs_dir, sweep_dir)
    sizes = [f'{len({p.seed for p in points})} seed(s)'] + [
        f'{len(values)} {name}' for name, values in axes]
    print(f'sweep: {len(points)} point(s) ({" x ".join(sizes)}); sweep '
          f'directory {sweep_dir}', flush=True)
    if dry_run:
      for p in points:
        print(f'  {p.index}: {p.run_dir}  {" ".join(p.params)}')
      return 0
    grid.write_manifest(os.path.abspath(sweep_dir), points, axes,
                        command or shlex.join(sys.argv))
    status = grid.read_status(sweep_dir)
    todo = [p for p in points if not grid.is_done(status, p)]
    done = len(points) - len(todo)
    if done:
      print(f'sweep: {done} point(s) finished already', flush=True)
    started = time.time()
    for p in todo:
      status.pop(str(p.index), None)
    grid.write_status(sweep_dir, status)

    def on_done(result):
      point = points[result['index']]
      ok = result['returncode'] == 0
      status[str(point.index)] = dict(
          status='done' if ok else 'failed', params=list(point.params),
          run_dir=point.run_dir, returncode=result['returncode'],
          seconds=round(result['seconds'], 1), error=result['error'])
      grid.write_status(sweep_dir, status)
      finished = sum(s['status'] == 'done' for s in status.values())
      failed = sum(s['status'] == 'failed' for s in status.values())
      print(f'sweep: [{finished + failed}/{len(points)}] point {point.index} '
            f'{"done" if ok else "FAILED"} in {result["seconds"]:.0f} s '
            f'({point.run_dir}){"" if ok else ": " + result["error"]}',
            flush=True)

    if todo:
      run(todo, os.path.abspath(sweep_dir), options, on_done)
    failed = sorted(int(i) for i, s in status.items()
                    if s['status'] != 'done')
    print(f'sweep: {len(points) - len(failed)} of {len(points)} point(s) '
          f'done in {time.time() - started:.0f} s; {sweep_dir}', flush=True)
    if failed:
      raise TicketsError(
          f'point(s) {", ".join(map(str, failed))} failed (logs: '
          f'{os.path.join(sweep_dir, "logs")}); run the same command to '
          'resume them')
    return 0
  except TicketsError as e:
    sys.stdout.flush()
    print(f'error: {" ".join(str(e).split())}', file=sys.stderr, flush=True)
    return 1
  except KeyboardInterrupt:
    print('\ninterrupted: run the same command to continue the sweep',
          file=sys.stderr, flush=True)
    return 130
