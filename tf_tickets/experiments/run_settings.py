"""`RunSettings`: every setting of one run, built once by the entrypoint.

The command line reads gin files into it (`tf_tickets.gin_config`), a
Python user builds it directly; the experiments, the loop and the hooks get
their part of it passed down and read nothing else. Its `identity()` (the
non-default, non-resumable fields) is what `RUN/config.json` stamps and
`fingerprint()` what names the default run directory.
"""
import dataclasses
import hashlib
import json

from tf_tickets import algorithms
from tf_tickets import data as data_lib
from tf_tickets import models
from tf_tickets import settings
from tf_tickets import summaries as summaries_lib
from tf_tickets import training as training_lib
from tf_tickets.errors import check_bool
from tf_tickets.experiments.context import KINDS
from tf_tickets.experiments.lottery import LotterySettings
from tf_tickets.experiments.stability import StabilitySettings


@settings.section('experiment')
class ExperimentSettings(settings.Settings):
  """gin `experiment.*`: `kind` (a name in KINDS) and `quiet` (no progress
  bar)."""
  kind: str = 'lottery'
  quiet: bool = settings.resumable(False)

  def validate(self):
    KINDS.get(self.kind)
    self.set('quiet', check_bool('experiment.quiet', self.quiet))


_field = lambda cls: dataclasses.field(default_factory=cls)


@dataclasses.dataclass(frozen=True)
class RunSettings:
  """One section per settings namespace (each validated on construction).

  `export` is the entrypoint's (`export.*`: what to export after the run);
  the experiments do not read it.
  """
  experiment: ExperimentSettings = _field(ExperimentSettings)
  dataset: data_lib.DatasetSettings = _field(data_lib.DatasetSettings)
  model: models.ModelSettings = _field(models.ModelSettings)
  training: training_lib.TrainingConfig = _field(
      training_lib.TrainingConfig)
  lottery: LotterySettings = _field(LotterySettings)
  sparse_training: algorithms.SparseTrainingSettings = _field(
      algorithms.SparseTrainingSettings)
  gmp: algorithms.GMPSettings = _field(algorithms.GMPSettings)
  stability: StabilitySettings = _field(StabilitySettings)
  summaries: summaries_lib.SummarySettings = _field(
      summaries_lib.SummarySettings)
  export: settings.Settings = None

  @classmethod
  def of(cls, sections):
    """From {namespace: settings} (e.g. `gin_config.sections()`)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in sections.items() if k in names})

  def sections(self):
    return tuple(getattr(self, f.name) for f in dataclasses.fields(self)
                 if getattr(self, f.name) is not None)

  def replace(self, **sections):
    return dataclasses.replace(self, **sections)

  def identity(self):
    """{'namespace.field': canonical JSON} of what makes the run what it
    is (`settings.identity`)."""
    out = settings.identity(self.sections())
    st = self.sparse_training
    if self.experiment.kind == 'sparse_training' and issubclass(
        algorithms.METHODS.get(st.method), algorithms.DynamicSparse):
      # begin_step came with a default that changed what RigL and SET do
      # (the first update at step 1, not after step ΔT): it names every
      # drop-and-grow run, so a run directory of the earlier phase is
      # never resumed or reused under the new one.
      out['sparse_training.begin_step'] = settings.canonical(st.begin_step)
    return out

  def fingerprint(self):
    blob = json.dumps(self.identity(), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]

  def to_json(self):
    return settings.to_json(self.sections())
