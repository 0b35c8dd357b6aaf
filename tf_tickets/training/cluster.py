"""Strategies and the workers of a run: who writes, barriers, time-outs.

`make_strategy` builds the `tf.distribute` strategy of `training.strategy`.
`Workers` says which process of a multi-worker run is the chief (the one
writer of the run directory) and gives the barriers the runner needs so
that no worker reads the run directory while another changes it.

Under `multi_worker_mirrored` every worker runs the same program (the same
collectives in the same order: checkpoints and reads of on-read variables
are collectives too), so the non-chief workers work in a private shadow of
the run directory (`make_shadow`) and only the chief's files land in
the shared one (TensorFlow's documented multi-worker pattern: non-chief
workers write their checkpoints to a temporary location).

A worker never waits for its peers for ever: joining the cluster at start-up
and every collective operation are bounded by `training.worker_timeout`.
"""
import dataclasses
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import numpy as np
import tensorflow as tf
from tensorflow.python.distribute import collective_all_reduce_strategy as _collective  # pylint: disable=g-direct-tensorflow-import

from tf_tickets.errors import ConfigError
from tf_tickets.errors import TicketsError
from tf_tickets.errors import check_choice
from tf_tickets.errors import first_line

STRATEGIES = ('default', 'mirrored', 'multi_worker_mirrored', 'tpu')
DEFAULT_WORKER_TIMEOUT = 300.0


class PeerError(TicketsError):
  """A peer worker stopped, or did not answer within the time-out."""


_INSTANCES = {}  # name -> the process's strategy of that name


def make_strategy(name, worker_timeout=DEFAULT_WORKER_TIMEOUT):
  """The tf.distribute strategy named by `training.strategy`.

  One instance per name and process, whatever `worker_timeout` is given
  (the first creation's): TensorFlow's collective ops key their instances
  per process, and several MirroredStrategy objects in one process collide
  ("Shape mismatch in the collective instance").

  `multi_worker_mirrored` waits at most `worker_timeout` seconds for the
  workers of TF_CONFIG to join (TensorFlow's own wait has no limit, and a
  process blocked in it ignores SIGTERM), then raises PeerError; each
  collective operation later is bounded by the same time-out.
  """
  check_choice('training.strategy', name, STRATEGIES)
  if name == 'default':
    return tf.distribute.get_strategy()
  if name not in _INSTANCES:  # a failed creation raises and is not kept
    _INSTANCES[name] = _create(name, worker_timeout)
  return _INSTANCES[name]


def _create(name, worker_timeout):
  if name == 'mirrored':
    return tf.distribute.MirroredStrategy()
  if name == 'multi_worker_mirrored':
    return _multi_worker(worker_timeout)
  resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
  tf.config.experimental_connect_to_cluster(resolver)
  tf.tpu.experimental.initialize_tpu_system(resolver)
  return tf.distribute.TPUStrategy(resolver)


def _multi_worker(timeout):
  wait_for_peers(timeout)
  # TensorFlow waits for the cluster with an all-reduce whose time-out is
  # this class attribute (0: for ever, holding the GIL, so that neither a
  # Python watchdog nor SIGTERM ends the process); it has no public knob.
  _collective.CollectiveAllReduceExtended._check_health_initial_timeout = (  # pylint: disable=protected-access
      int(max(1, timeout)))
  try:
    return tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=timeout))
  except RuntimeError as e:
    raise PeerError(
        f'training.strategy: not every worker of TF_CONFIG joined within '
        f'{timeout:g} s (training.worker_timeout: {first_line(e)}); start '
        'the same command on every worker listed in TF_CONFIG["cluster"], '
        'each with its own "task"') from None
  except (ValueError, tf.errors.OpError) as e:
    raise ConfigError('training.strategy', f"'multi_worker_mirrored' cannot "
                      f'start with this TF_CONFIG ({first_line(e)})') from None


def _cluster_addresses():
  """(this worker's address, every collective worker's address) from
  TF_CONFIG; (None, []) without a cluster."""
  try:
    config = json.loads(os.environ.get('TF_CONFIG') or '{}')
    cluster = config.get('cluster') or {}
    addresses = [a for kind in ('chief', 'worker')
                 for a in cluster.get(kind, [])]
    if not addresses:
      return None, []
    task = config['task']
    return cluster[task['type']][int(task['index'])], addresses
  except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
    raise ConfigError('TF_CONFIG', 'give {"cluster": {"worker": ["host:port", '
                      '...]}, "task": {"type": "worker", "index": i}} with '
                      f'this worker\'s own entry ({type(e).__name__}: '
                      f'{first_line(e)})') from None


def _host_port(address):
  host, _, port = address.rpartition(':')
  if not host or not port.isdigit():
    raise ConfigError('TF_CONFIG', f'{address!r} is not "host:port"')
  return host.strip('[]'), int(port)


def _reachable(address):
  try:
    with socket.create_connection(_host_port(address), timeout=1.0):
      return True
  except OSError:
    return False


def wait_for_peers(timeout, poll=0.2):
  """Waits at most `timeout` seconds until every worker of TF_CONFIG is up.

  TensorFlow's own rendezvous (building MultiWorkerMirroredStrategy) waits
  for ever for a worker that never starts, in native code that ignores the
  time-outs and SIGTERM. So each worker first listens on its own TF_CONFIG
  port with a plain socket and polls the ports of the others; once all
  answer, it closes its socket and lets TensorFlow bind the port (a worker
  still polling sees the port again as soon as TensorFlow's server is up).
  Connections are never accepted, so closing leaves no port in TIME_WAIT.
  Raises PeerError naming the workers that did not answer in time.
  """
  mine, addresses = _cluster_addresses()
  if len(addresses) < 2:
    return
  _, port = _host_port(mine)
  listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
  try:
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
      listener.bind(('', port))
    except OSError as e:
      raise ConfigError('TF_CONFIG', f'this worker cannot listen on its '
                        f'address {mine!r} ({e.strerror}): is another '
                        'process using the port?') from None
    listener.listen(64)
    pending = [a for a in addresses if a != mine]
    deadline = time.monotonic() + timeout
    while True:
      pending = [a for a in pending if not _reachable(a)]
      if not pending:
        return
      if time.monotonic() > deadline:
        raise PeerError(
            f'training.strategy: worker(s) {", ".join(pending)} of TF_CONFIG '
            f'did not start within training.worker_timeout = {timeout:g} s; '
            'start the same command on every worker listed in '
            'TF_CONFIG["cluster"], each with its own "task"')
      time.sleep(poll)
  finally:
    listener.close()


@dataclasses.dataclass(frozen=True)
class Workers:
  """The processes of one run: `count` workers, this one is `index`; the
  chief (index 0, or TF_CONFIG's "chief" task) is the one writer."""
  strategy: tf.distribute.Strategy
  index: int = 0
  count: int = 1

  @classmethod
  def of(cls, strategy):
    """The workers of `strategy` (one, except under multi_worker_mirrored
    with a TF_CONFIG cluster)."""
    resolver = getattr(strategy, 'cluster_resolver', None)
    if (not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        or resolver is None or not resolver.cluster_spec().as_dict()):
      return cls(strategy)
    spec = resolver.cluster_spec().as_dict()
    chiefs = len(spec.get('chief', []))
    index = resolver.task_id + (chiefs if resolver.task_type == 'worker'
                                else 0)
    return cls(strategy, index=index, count=chiefs + len(spec.get('worker',
                                                                   [])))

  @property
  def is_chief(self):
    return self.index == 0

  @property
  def several(self):
    return self.count > 1

  def gather(self, value):
    """The int64 `value` of every worker (a barrier: it returns once every
    worker has called it), in worker order."""
    if not self.several:
      return [int(value)]
    strategy = self.strategy
    per_replica = strategy.run(
        lambda: tf.constant([int(value)], dtype=tf.int64))
    try:
      out = strategy.gather(per_replica, axis=0).numpy()
    except tf.errors.OpError as e:
      raise self.peer_error(e) from None
    # Each worker contributes one value per local replica.
    return [int(v) for v in np.reshape(out, (self.count, -1))[:, 0]]

  def barrier(self):
    self.gather(0)

  def peer_error(self, e):
    """The PeerError for a failed collective operation `e`."""
    return PeerError(
        f'training.strategy: worker {self.index} of {self.count} lost its '
        f'peers ({type(e).__name__}: {first_line(e, 160)}): another worker '
        'stopped or did not answer within training.worker_timeout; run the '
        'same command on every worker again to resume')


def make_shadow(run_dir, index):
  """A private working copy of `run_dir` for a worker that must not write
  the shared one (a non-chief worker of a multi-worker run): a temporary
  directory with the same subdirectories, each file a symbolic link to the
  shared file. tf_tickets never changes a file in place (it replaces files
  by renaming, as above, or creates new ones), so writes in the shadow stay
  private and removing it removes only links.

  Its name is fixed per run directory and worker `index`
  (`$TMPDIR/tf_tickets-worker-<hash>-<index>`): the copy a killed worker
  left is replaced when that worker runs again, and removed at its end.
  """
  source = os.path.abspath(run_dir)
  digest = hashlib.sha256(source.encode()).hexdigest()[:12]
  shadow = os.path.join(tempfile.gettempdir(),
                        f'tf_tickets-worker-{digest}-{index}')
  shutil.rmtree(shadow, ignore_errors=True)
  os.makedirs(shadow)
  for root, _, files in os.walk(source):
    target = os.path.normpath(os.path.join(shadow,
                                           os.path.relpath(root, source)))
    os.makedirs(target, exist_ok=True)
    for name in files:
      os.symlink(os.path.join(root, name), os.path.join(target, name))
  return shadow
