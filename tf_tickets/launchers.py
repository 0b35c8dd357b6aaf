"""Where a sweep's points run (`--launcher`): existing engines, not a
scheduler of our own.

* 'local': worker threads on this machine, each running one point's
  training process at a time (`--workers`, default 1: one training per
  core you allow).
* 'ray': tasks on a Ray cluster (`--ray_address`; without it a local Ray
  cluster of `--workers` CPUs), one CPU per point (`pip install
  tf_tickets[ray]`).
* 'slurm': a SLURM job array through submitit (`pip install
  tf_tickets[slurm]`; `--slurm_partition`, `--slurm_time`,
  `--slurm_cpus`); `--submitit_cluster=local` runs the same job array as
  local processes (for a try without SLURM).

Every launcher calls `on_done(result)` as each point ends (in completion
order); a point whose process was killed reports its exit status, and a
rerun of the sweep runs it again, resuming from its last checkpoint.
"""
import concurrent.futures
import dataclasses
import os
import time

from tf_tickets import grid
from tf_tickets import settings
from tf_tickets.errors import ConfigError

LAUNCHERS = settings.Registry('--launcher')


@dataclasses.dataclass(frozen=True)
class Options:
  """How to launch: `workers` (local threads, or a local Ray cluster's
  CPUs), `ray_address`, the SLURM job's settings."""
  workers: int = 1
  ray_address: str = None
  slurm_partition: str = None
  slurm_time: int = 240  # minutes per point
  slurm_cpus: int = 2
  submitit_cluster: str = None  # None: SLURM (submitit's auto-detection)


@LAUNCHERS.register('local')
def run_local(points, sweep_dir, options, on_done):
  with concurrent.futures.ThreadPoolExecutor(options.workers) as pool:
    futures = [pool.submit(grid.run_point, p, sweep_dir) for p in points]
    for future in concurrent.futures.as_completed(futures):
      on_done(future.result())


def _import(name, extra):
  try:
    return __import__(name)
  except ImportError:
    raise ConfigError('--launcher', f'{name} is not installed: pip install '
                      f'"tf_tickets[{extra}]" (or pip install {name})') from None


@LAUNCHERS.register('ray')
def run_ray(points, sweep_dir, options, on_done):
  ray = _import('ray', 'ray')
  if not ray.is_initialized():
    if options.ray_address:
      ray.init(address=options.ray_address)
    else:
      ray.init(num_cpus=options.workers)
  task = ray.remote(num_cpus=1, max_retries=0)(grid.run_point)
  pending = [task.remote(p, sweep_dir) for p in points]
  while pending:
    done, pending = ray.wait(pending, num_returns=1)
    on_done(ray.get(done[0]))


@LAUNCHERS.register('slurm')
def run_slurm(points, sweep_dir, options, on_done):
  submitit = _import('submitit', 'slurm')
  executor = submitit.AutoExecutor(
      folder=os.path.join(sweep_dir, 'submitit'),
      cluster=options.submitit_cluster)
  params = dict(timeout_min=options.slurm_time, cpus_per_task=options.slurm_cpus,
                tasks_per_node=1, nodes=1)
  if options.submitit_cluster in (None, 'slurm'):
    params.update(slurm_array_parallelism=options.workers)
    if options.slurm_partition:
      params.update(slurm_partition=options.slurm_partition)
  executor.update_parameters(**params)
  jobs = executor.map_array(grid.run_point, points, [sweep_dir] * len(points))
  pending = list(jobs)
  while pending:
    finished = [j for j in pending if j.done()]
    for job in finished:
      pending.remove(job)
      try:
        on_done(job.result())
      except Exception as e:  # pylint: disable=broad-except
        index = points[jobs.index(job)].index
        on_done(dict(index=index, returncode=1, seconds=0.0,
                     error=f'job {job.job_id}: {type(e).__name__}: '
                     f'{str(e).strip().splitlines()[-1][:300]}'))
    if pending:
      time.sleep(2)
