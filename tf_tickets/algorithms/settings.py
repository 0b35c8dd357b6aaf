"""Sparse-training settings: `sparse_training.*` and `gmp.*` in gin."""
import math

from tf_tickets import blocks
from tf_tickets import distributions
from tf_tickets import settings
from tf_tickets import steps
from tf_tickets.errors import ConfigError
from tf_tickets.errors import check_bool
from tf_tickets.errors import check_choice
from tf_tickets.errors import check_int
from tf_tickets.errors import check_mapping
from tf_tickets.errors import check_range

DECAYS = ('cosine', 'constant', 'lr')

# Sparse-training methods: `@METHODS.register('name')` on an `Algorithm`.
METHODS = settings.Registry('sparse_training.method')


@settings.section('sparse_training')
class SparseTrainingSettings(settings.Settings):
  """Sparse-training settings (gin: `sparse_training.*`).

  method: a registered algorithm: 'rigl', 'set', 'static' or 'gmp'.
  sparsity: overall sparsity of the layers not named in custom_sparsity
    (the final sparsity for 'gmp'), in [0, 1).
  distribution: 'uniform', 'er' or 'erk' (per-layer sparsities).
  power_scale: exponent of the ER/ERK raw densities (0 = uniform). The
    rigl reference applies it to ERK only; here to ER too (the default 1
    gives the reference's ER).
  custom_sparsity: dict layer name or weight key -> sparsity, overriding
    the distribution for those layers (e.g. {'conv1': 0.0} keeps conv1
    dense).
  dense_first_layer: keep the first prunable layer dense. None: True for
    'uniform' (as the RigL paper), False for 'er' / 'erk'.
  update_every: ΔT, steps between mask updates (500, '500it', '1ep');
    not scaled by training.steps_multiplier.
  begin_step: the global step g (steps completed before the update) of
    the first mask update; then every ΔT steps while g < end_step. 0 (the
    default, as rigl's `maskupdate_begin_step` and jaxpruner's
    `update_start_step`) updates the masks at the very first step, in
    place of its weight update. Steps (scaled by the multiplier, as
    rigl scales it) or a fraction of training. Before commit d2d7627
    tf_tickets updated after steps ΔT, 2ΔT, ...: begin_step = ΔT - 1
    (without a multiplier) gives those update steps, with the drop
    fraction now starting at alpha. In `model.fit` with
    steps_per_execution = k > 1 updates must end a call: use ΔT - 1 (or
    any begin_step with begin_step + 1 a multiple of k).
  end_step: T_end, no mask updates at or after it: a fraction of training
    in (0, 1] (default 0.75) or steps (scaled by the multiplier). rigl
    updates at g = end_step too; with the cosine decay that update drops
    nothing (f = 0), with a constant decay it is one update more there.
  drop_fraction: alpha, the drop fraction of the first update, in [0, 1).
  drop_fraction_decay: 'cosine', 'constant' or 'lr'.
  seed: seeds the initial masks and SET's growth; None: training.seed.
  grow_batch_size: None (growth scores from the dense gradient of the
    step's own batch, as the RigL paper) or N: from a fixed batch of N
    training examples (as rigl_tf2, which scores on a fixed held batch);
    also the batch SNIP scores on (None: one training batch).
  block_size: None (element masks) or a block size of Dense kernels,
    (inputs, outputs) such as (16, 1) (n means (n, 1)): every method then
    drops, grows and prunes whole blocks (`tf_tickets.blocks`,
    `Algorithm` layouts); (16, 1) is what LiteRT runs sparse natively in
    int8 and float32.
  channel_sparsity: S_c, the fraction of units (Dense neurons, conv
    output channels of the layers `masks.unit_keys` names) that a
    drop-and-grow method ('rigl', 'set') removes for good during training,
    as Chase (Yin et al., NeurIPS 2023; luuyin/chase): at each mask update
    the alive units of smallest unmasked mean magnitude, ranked over all
    those layers together, are emptied until S_c(1 - (1 - p)^3) of the
    units are gone (p: the update's place between the first and the last
    update, so S_c is reached exactly at the last one), with the rows of
    the layers that read them through per-channel layers
    (`masks.unit_readers`); each layer regrows what it freed (by its
    method's grow score) in its allowed entries, so its count stays unless
    they are full (a dense output layer loses the rows of removed inputs).
    0 (the default) removes nothing. Differences from the reference: the
    removal happens at the mask updates and p runs from the first to the
    last update (the reference removes at its own interval, p from step 0
    to `stop_gmp_epochs`); per-layer budgets instead of its global
    regrowth; a unit with no active entry counts as removed (so it is
    never regrown: the masks are the whole state and a resumed run
    continues exactly), and an alive unit the drop empties regrows its
    best entry first; the eligible layers are every Dense/Conv2D but the
    output's (the reference lists its layers per architecture: a ResNet's
    block-internal convolutions only), and a unit that feeds an Add,
    a concatenation or a reshape keeps those readers' rows (the compact
    export keeps such channels). The smaller network:
    `tf_tickets.export --compact`.
  channel_min_fraction: beta, Chase's `minumum_ratio`: a layer keeps at
    least max(1, int(units * (1 - S_c) * beta)) units.
  skip_update_on_mask_steps: at a drop-and-grow step the
    mask update replaces the weight update (RigL paper Algorithm 1, the TF1
    RigL code, jaxpruner's default); False applies the step's update too
    (tf_tickets before 0.2).
  """
  method: str = 'rigl'
  sparsity: float = 0.9
  distribution: str = 'erk'
  power_scale: float = 1.0
  custom_sparsity: dict = None
  dense_first_layer: bool = None
  update_every: object = 100
  begin_step: object = 0
  end_step: object = 0.75
  drop_fraction: float = 0.3
  drop_fraction_decay: str = 'cosine'
  seed: int = None
  skip_update_on_mask_steps: bool = True
  grow_batch_size: int = None
  block_size: object = None
  channel_sparsity: float = 0.0
  channel_min_fraction: float = 0.5

  def validate(self):
    METHODS.get(self.method)
    self.set('block_size', blocks.parse(self.block_size,
                                        'sparse_training.block_size'))
    self.set('sparsity', check_range('sparse_training.sparsity',
                                     self.sparsity))
    check_choice('sparse_training.distribution', self.distribution,
                 tuple(distributions.DISTRIBUTIONS))
    self.set('power_scale', check_range('sparse_training.power_scale',
                                        self.power_scale, 0.0, math.inf))
    custom = check_mapping('sparse_training.custom_sparsity',
                           self.custom_sparsity, 'layer name -> sparsity')
    self.set('custom_sparsity', {
        k: check_range(f'sparse_training.custom_sparsity[{k!r}]', v)
        for k, v in custom.items()})
    dense_first = check_bool('sparse_training.dense_first_layer',
                             self.dense_first_layer, allow_none=True)
    self.set('dense_first_layer', self.distribution == 'uniform'
             if dense_first is None else dense_first)
    if isinstance(self.update_every, float):
      raise ConfigError('sparse_training.update_every', 'expected steps like '
                        f'100, "100it" or "1ep", got {self.update_every!r}')
    steps.parse(self.update_every, 'sparse_training.update_every',
                positive=True)
    steps.parse(self.begin_step, 'sparse_training.begin_step', fraction=True)
    steps.parse(self.end_step, 'sparse_training.end_step', fraction=True)
    self.set('drop_fraction', check_range('sparse_training.drop_fraction',
                                          self.drop_fraction))
    check_choice('sparse_training.drop_fraction_decay',
                 self.drop_fraction_decay, DECAYS)
    self.set('seed', check_int('sparse_training.seed', self.seed, 0,
                               allow_none=True))
    self.set('grow_batch_size', check_int('sparse_training.grow_batch_size',
                                          self.grow_batch_size, 1,
                                          allow_none=True))
    self.set('channel_sparsity', check_range(
        'sparse_training.channel_sparsity', self.channel_sparsity))
    self.set('channel_min_fraction', check_range(
        'sparse_training.channel_min_fraction', self.channel_min_fraction,
        0.0, 1.0, low_open=True, high_open=False))
    if self.channel_sparsity and not METHODS.get(self.method).removes_units:
      raise ConfigError('sparse_training.channel_sparsity', 'removes units '
                        'at the mask updates of a drop-and-grow method '
                        f"('rigl', 'set'); {self.method!r} has none")
    if self.channel_sparsity and self.block_size is not None:
      raise ConfigError('sparse_training.channel_sparsity', 'removes whole '
                        'units of element masks; it cannot be combined with '
                        'sparse_training.block_size')
    self.set('skip_update_on_mask_steps', check_bool(
        'sparse_training.skip_update_on_mask_steps',
        self.skip_update_on_mask_steps))


@settings.section('gmp')
class GMPSettings(settings.Settings):
  """Gradual magnitude pruning settings (gin: `gmp.*`).

  They parametrise `tfmot.sparsity.keras.PolynomialDecay`, one per layer,
  whose final sparsity is the layer's target from `sparse_training.*`:

      s(t) = s_f + (s_i - s_f) * (1 - (t - begin) / (end - begin)) ** power

  Masks are pruned at the steps where the schedule says so (every
  `frequency` steps from `begin_step` to `end_step`) and, so the target is
  always reached, at `end_step` too.

  begin_step, end_step: a fraction of training in (0, 1] or steps (scaled
    by training.steps_multiplier). Defaults 1/8 and 3/4 of training (our
    choice: masks fixed for the last quarter, as RigL's T_end).
  frequency: steps between pruning steps (Zhu & Gupta: 100 to 1000).
  power: exponent of the polynomial (Zhu & Gupta: 3).
  initial_sparsity: s_i, in [0, 1).
  """
  begin_step: object = 0.125
  end_step: object = 0.75
  frequency: int = 100
  power: float = 3.0
  initial_sparsity: float = 0.0

  def validate(self):
    steps.parse(self.begin_step, 'gmp.begin_step', fraction=True)
    steps.parse(self.end_step, 'gmp.end_step', fraction=True)
    self.set('frequency', check_int('gmp.frequency', self.frequency, 1))
    self.set('power', check_range('gmp.power', self.power, 0.0, math.inf,
                                  low_open=True))
    self.set('initial_sparsity', check_range('gmp.initial_sparsity',
                                             self.initial_sparsity))
