"""Training settings (gin `training.*`), LR schedules, optimizers.

`TrainingConfig` is what `training.*` binds. `resolve_schedule` turns its
step settings into counts for one dataset; `make_optimizer` builds the Keras
optimizer and its `LearningRate`; `optimizer_slots` finds an optimizer's
per-entry state. Strategies: `training.cluster`.
"""

import dataclasses
import math

import tensorflow as tf

from tf_tickets import settings
from tf_tickets.algorithms import RunSteps
from tf_tickets import steps as steps_lib
from tf_tickets.errors import ConfigError
from tf_tickets.errors import TicketsError
from tf_tickets.errors import check_bool
from tf_tickets.errors import check_choice
from tf_tickets.errors import check_int
from tf_tickets.errors import check_range
from tf_tickets.keras import keras
from tf_tickets.training.cluster import DEFAULT_WORKER_TIMEOUT
from tf_tickets.training.cluster import STRATEGIES

OPTIMIZERS = ('sgd', 'momentum', 'nesterov', 'adam', 'adamw')
LR_SCHEDULES = ('constant', 'step', 'cosine', 'linear')


@settings.section('training')
class TrainingConfig(settings.Settings):
  """Training settings (gin: `training.*`).

  steps: training steps per network: an int, 'Nit' or 'Nep' (epochs).
  seed: seeds everything: initialisation, data order, masks.
  optimizer: 'sgd', 'momentum', 'nesterov', 'adam' or 'adamw'.
  learning_rate: base learning rate.
  momentum: momentum for 'momentum' / 'nesterov'.
  weight_decay: L2 penalty 0.5*wd*|w|^2 on all trainable weights (coupled,
    as PyTorch's weight_decay) for sgd/momentum/nesterov/adam; decoupled
    weight decay for adamw.
  lr_schedule: 'constant', 'step' (multiply by lr_gamma at each of
    lr_milestones), 'cosine' (to 0 at the end) or 'linear' (to 0).
  lr_milestones: steps ('Nit'/'Nep' forms allowed) for the 'step' schedule.
  lr_gamma: factor of the 'step' schedule.
  warmup_steps: linear warmup from 0 over this many steps.
  steps_multiplier: scales steps, milestones, warmup and the sparse
    training end step together (RigL's M x runs).
  strategy: 'default', 'mirrored', 'multi_worker_mirrored' or 'tpu'.
  worker_timeout: multi_worker_mirrored only: seconds a worker waits for its
    peers (to join at start-up, in any collective operation) before it ends
    with one error line (see `training.cluster`).
  eval_every: evaluation interval (validation and test), steps or 'Nep'.
  checkpoint_every: checkpoint interval: wall time ('60s', '5min', '1h';
    checked at the compiled loop's call boundaries, every `steps_per_loop`
    steps at most) or steps (1000, '1000it', '2ep'). A killed run resumes
    from the last checkpoint (bitwise as if uninterrupted) and so loses at
    most this much work; a finished network is saved whole (final/).
  log_every: interval of progress and loss summaries.
  deterministic: enable TF op determinism (bitwise-reproducible runs).
  jit_compile: compile the training step with XLA: True, False or 'auto'
    (XLA on GPU/TPU, and on CPU only for networks without convolutions:
    measured here, XLA makes LeNet-300-100 3.2x faster on CPU and Conv-6
    about 100x slower). Falls back to the uncompiled step, with a warning,
    where XLA cannot compile it.
  steps_per_loop: at most this many training steps per call into the
    compiled loop; hooks, evaluations, checkpoints and loss logging run at
    call boundaries, which are placed on the steps they need, so results
    do not depend on it (1: one step per call).
  """
  steps: object = '50000it'
  seed: int = 0
  optimizer: str = 'adam'
  learning_rate: float = 1.2e-3
  momentum: float = 0.9
  weight_decay: float = 0.0
  lr_schedule: str = 'constant'
  lr_milestones: tuple = ()
  lr_gamma: float = 0.1
  warmup_steps: object = 0
  steps_multiplier: float = 1.0
  strategy: str = 'default'
  worker_timeout: float = settings.resumable(DEFAULT_WORKER_TIMEOUT)
  eval_every: object = '1ep'
  checkpoint_every: object = settings.resumable('60s')  # never changes results
  log_every: int = settings.resumable(100)
  deterministic: bool = True
  jit_compile: object = 'auto'
  steps_per_loop: int = settings.resumable(100)  # the same step boundaries

  def validate(self):
    self.set('seed', check_int('training.seed', self.seed, 0))
    check_choice('training.optimizer', self.optimizer, OPTIMIZERS)
    check_choice('training.lr_schedule', self.lr_schedule, LR_SCHEDULES)
    check_choice('training.strategy', self.strategy, STRATEGIES)
    self.set('worker_timeout', check_range(
        'training.worker_timeout', self.worker_timeout, 0.0, math.inf,
        low_open=True))
    check_range('training.learning_rate', self.learning_rate, 0.0,
                math.inf, low_open=True)
    check_range('training.momentum', self.momentum, 0.0, 1.0)
    check_range('training.weight_decay', self.weight_decay, 0.0, math.inf)
    check_range('training.lr_gamma', self.lr_gamma, 0.0, math.inf,
                low_open=True)
    check_range('training.steps_multiplier', self.steps_multiplier, 0.0,
                math.inf, low_open=True)
    self.set('lr_milestones', tuple(self.lr_milestones))
    self.set('log_every', check_int('training.log_every', self.log_every, 1))
    self.set('deterministic', check_bool('training.deterministic',
                                         self.deterministic))
    if self.jit_compile != 'auto':
      self.set('jit_compile', check_bool('training.jit_compile',
                                         self.jit_compile))
    self.set('steps_per_loop', check_int('training.steps_per_loop',
                                         self.steps_per_loop, 1))
    steps_lib.parse(self.steps, 'training.steps')
    for m in self.lr_milestones:
      steps_lib.parse(m, 'training.lr_milestones')
    steps_lib.parse(self.warmup_steps, 'training.warmup_steps')
    steps_lib.parse(self.eval_every, 'training.eval_every')
    steps_lib.parse_interval(self.checkpoint_every,
                             'training.checkpoint_every')


@dataclasses.dataclass(frozen=True)
class Schedule:
  """Step counts of one training run, resolved against the data."""
  steps: int
  milestones: tuple
  warmup: int
  eval_every: int
  checkpoint_every: int  # steps; None when checkpoints go by wall time
  checkpoint_seconds: float = None


def resolve_schedule(config, steps_per_epoch):
  """The step counts of `config` for `steps_per_epoch` (validates them)."""
  def scaled(value, setting):
    return steps_lib.resolve(value, setting, steps_per_epoch,
                             multiplier=config.steps_multiplier)

  total = scaled(config.steps, 'training.steps')
  if total < 1:
    raise ConfigError('training.steps', 'must be at least 1 step')
  milestones = tuple(sorted(scaled(v, 'training.lr_milestones')
                            for v in config.lr_milestones))
  eval_every = steps_lib.resolve(config.eval_every, 'training.eval_every',
                                 steps_per_epoch)
  kind, every = steps_lib.parse_interval(config.checkpoint_every,
                                        'training.checkpoint_every')
  seconds = every if kind == 'seconds' else None
  ckpt_every = None if seconds else max(
      1, every.resolve(steps_per_epoch) or total)
  return Schedule(steps=total, milestones=milestones,
                  warmup=scaled(config.warmup_steps, 'training.warmup_steps'),
                  eval_every=max(1, min(eval_every or total, total)),
                  checkpoint_every=ckpt_every, checkpoint_seconds=seconds)


def run_steps(config, steps_per_epoch):
  """What an algorithm resolves its step settings against
  (`algorithms.RunSteps`): the run's total steps, steps per epoch and
  multiplier."""
  return RunSteps(resolve_schedule(config, steps_per_epoch).steps,
                  steps_per_epoch, config.steps_multiplier)


class LearningRate(keras.optimizers.schedules.LearningRateSchedule):
  """Linear warmup, then constant / step / cosine / linear decay."""

  def __init__(self, base, kind, total_steps, milestones=(), gamma=0.1,
               warmup=0, offset=0):
    super().__init__()
    self.base, self.kind, self.total = float(base), kind, int(total_steps)
    self.milestones, self.gamma = tuple(milestones), float(gamma)
    self.warmup, self.offset = int(warmup), int(offset)

  @classmethod
  def of(cls, config, schedule, offset=0):
    """The schedule `config` trains with over `schedule`; called with the
    optimizer's iteration count, which starts at 0 at global step
    `offset` (a level that continues at the rewind step)."""
    return cls(config.learning_rate, config.lr_schedule, schedule.steps,
               schedule.milestones, config.lr_gamma, schedule.warmup,
               offset=offset)

  def value(self, step):
    """The learning rate at global step `step` (python float)."""
    return float(self(tf.constant(step - self.offset, tf.int64)))

  def ratio(self, step):
    """lr(step) / the base rate (e.g. RigL's 'lr' drop-fraction decay)."""
    return self.value(step) / self.base

  def __call__(self, step):
    step = tf.cast(step, tf.float32) + float(self.offset)
    base = tf.constant(self.base, tf.float32)
    if self.kind == 'step':
      passed = tf.add_n([tf.cast(step >= m, tf.float32)
                         for m in self.milestones] + [tf.constant(0.0)])
      lr = base * tf.pow(self.gamma, passed)
    elif self.kind in ('cosine', 'linear'):
      span = max(1, self.total - self.warmup)
      t = tf.clip_by_value((step - self.warmup) / span, 0.0, 1.0)
      if self.kind == 'cosine':
        lr = 0.5 * base * (1.0 + tf.cos(math.pi * t))
      else:
        lr = base * (1.0 - t)
    else:
      lr = base
    if self.warmup > 0:
      lr = lr * tf.minimum(1.0, (step + 1.0) / self.warmup)
    return lr

  def get_config(self):
    return dict(base=self.base, kind=self.kind, total_steps=self.total,
                milestones=self.milestones, gamma=self.gamma,
                warmup=self.warmup, offset=self.offset)


def make_optimizer(config, schedule, start_step=0):
  """(Keras optimizer, its LearningRate) of `config` over `schedule`.

  The optimizer is new (its slots and iteration count start at zero, so
  Adam's bias correction starts afresh, as in PyTorch/OpenLTH); the learning
  rate continues at `start_step` of the schedule.
  """
  lr = LearningRate.of(config, schedule, offset=start_step)
  name = config.optimizer
  if name == 'sgd':
    opt = keras.optimizers.SGD(lr)
  elif name in ('momentum', 'nesterov'):
    opt = keras.optimizers.SGD(lr, momentum=config.momentum,
                               nesterov=name == 'nesterov')
  elif name == 'adam':
    opt = keras.optimizers.Adam(lr)
  else:
    opt = keras.optimizers.AdamW(lr, weight_decay=config.weight_decay)
  return opt, lr


def optimizer_slots(optimizer, variable):
  """The optimizer variables kept per entry of `variable` (momentum, Adam's
  m and v, ...), i.e. its slots with the variable's shape.

  New tf_keras optimizers keep slots in lists indexed by
  `optimizer._index_dict[optimizer._var_key(variable)]` (`_momentums`,
  `_velocities`, `momentums`, ...); every such list entry that is an
  optimizer variable of the same shape counts. Legacy optimizers use
  `get_slot_names` / `get_slot`.
  """
  if hasattr(optimizer, 'get_slot_names'):  # legacy optimizers
    slots = [optimizer.get_slot(variable, n)
             for n in optimizer.get_slot_names()]
    return [s for s in slots if s is not None and s.shape == variable.shape]
  index_dict = getattr(optimizer, '_index_dict', None)
  index = None
  if index_dict and hasattr(optimizer, '_var_key'):
    index = index_dict.get(optimizer._var_key(variable))  # pylint: disable=protected-access
  if index is None:
    raise TicketsError(
        f'cannot find the per-weight state of optimizer '
        f'{type(optimizer).__name__} for {variable.name} (sparse training '
        'zeroes it for grown connections); supported: the tf_keras '
        'optimizers (SGD, Adam, AdamW, RMSprop, ... and their legacy '
        'versions), built for the model\'s variables')
  own = {id(v) for v in optimizer.variables}
  slots, seen = [], set()
  for name, value in vars(optimizer).items():
    if name == '_variables' or isinstance(value, (str, bytes, tf.Variable)):
      continue
    try:
      if len(value) != len(index_dict):
        continue
      candidate = value[index]
    except (TypeError, KeyError, IndexError):
      continue
    if (id(candidate) in own and id(candidate) not in seen
        and candidate is not variable and candidate.shape == variable.shape):
      seen.add(id(candidate))
      slots.append(candidate)
  return slots


def use_xla(setting, model):
  """Whether to compile the training step of `model` with XLA for the
  `training.jit_compile` setting (see `TrainingConfig`)."""
  if setting != 'auto':
    return bool(setting)
  if tf.config.list_logical_devices('GPU') or tf.config.list_logical_devices(
      'TPU'):
    return True
  return not any(c.__name__ == 'Conv' for layer in model.submodules
                 for c in type(layer).__mro__)
