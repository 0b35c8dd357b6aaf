"""Reading a finished training run: its levels, its settings (from
RUN/config.json), its data and its network (nothing in the run directory
is written)."""
import os

from tf_tickets import data as data_lib
from tf_tickets import models
from tf_tickets import rundir
from tf_tickets import settings
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.errors import ConfigError


def check_run_dir(run_dir, setting='--run_dir'):
  """Raises ConfigError unless `run_dir` is a run with a finished network."""
  if not run_dir:
    raise ConfigError(setting, 'required: the directory of a training run '
                      '(what --output_dir of tf_tickets.train named)')
  if not os.path.isdir(run_dir):
    raise ConfigError(setting, f'{run_dir!r} does not exist or is not a '
                      'directory')
  if not os.path.isfile(rundir.config_json_path(run_dir)):
    raise ConfigError(setting, f'{run_dir!r} is not a tf_tickets run (no '
                      'config.json); give the --output_dir of a '
                      'tf_tickets.train run or the output_dir of run_lottery')
  if not rundir.finished_levels(run_dir):
    raise ConfigError(setting, f'{run_dir!r} holds no finished network (no '
                      'level_<N>/ with final/ and result.json); train it first')


def pick_level(run_dir, level=None, setting='--level'):
  """The level to export: `level`, or the finished one of lowest density."""
  levels = rundir.finished_levels(run_dir)
  valid = ', '.join(str(l) for l in sorted(levels)) or 'none'
  if level is None:
    return min(levels, key=lambda l: (float(levels[l].get('density', 1.0)),
                                      -l))
  if isinstance(level, str):
    try:
      level = int(level)
    except ValueError:
      raise ConfigError(setting, f'expected a level number, got {level!r}; '
                        f'finished levels: {valid}') from None
  if level not in levels:
    state = ('is not finished (no final/ and result.json yet)'
             if os.path.isdir(rundir.level_dir(run_dir, level))
             else 'does not exist')
    raise ConfigError(setting, f'level {level} of {run_dir!r} {state}; '
                      f'finished levels: {valid}')
  return level


def load_run_settings(run_dir, overrides=None):
  """(DatasetSettings, ModelSettings) of the run, from RUN/config.json, with
  `overrides` ({namespace: {field: value}}, e.g. a moved `dataset.idx_dir`)
  applied. Raises ConfigError for a run written before config.json held
  its settings (`rundir.read_settings` is None then)."""
  stored = rundir.read_settings(run_dir)
  if stored is None:
    raise ConfigError('--run_dir', f'{run_dir!r} was written by an older '
                      'tf_tickets (its config.json holds no settings); '
                      'export it with python -m tf_tickets.export, which '
                      'reads its operative_config.gin')
  overrides = dict(overrides or {})
  unknown = set(overrides) - {'dataset', 'model'} - set(settings.OPTIONS)
  if unknown:
    raise ConfigError('--gin_param', f'{sorted(unknown)[0]}.* does not '
                      'change an export; only dataset.* and model.* do')
  if 'dataset' not in stored and 'dataset' not in overrides:
    raise ConfigError('dataset', f'{run_dir!r} records no dataset (trained '
                      'by run_lottery on your data): give it, e.g. '
                      '--gin_param="import my_data" --gin_param="dataset.'
                      'loader = @my_data.load", or call '
                      'tf_tickets.export.export_model with your arrays')
  dataset = settings.from_json('dataset', stored.get('dataset', {}),
                               overrides.get('dataset'))
  model_fields = dict(stored.get('model', {}))
  options = {ns: v for ns, v in overrides.items() if ns in settings.OPTIONS}
  if options:
    model_fields['options'] = dict(model_fields.get('options') or {},
                                   **options)
  model = settings.from_json('model', model_fields, overrides.get('model'))
  return dataset, model


def load_run_dataset(cfg):
  """`data.load(cfg)`; errors say how to override a setting of the run
  (e.g. when the data moved)."""
  try:
    return data_lib.load(cfg)
  except ConfigError as e:
    message = str(e).strip().splitlines()[0].split(': ', 1)[-1]
    raise ConfigError(e.setting, message + ' (a setting of the run; '
                      f'override it with --gin_param="{e.setting} = ..." '
                      'if the data moved)') from None


def _dense_layers(model, result):
  """Prunable layers the run left unwrapped (absent from layer_density)."""
  keys = set(result.get('layer_density') or {})
  if not keys:
    return ()
  wrapped = {k.split('/')[0] for k in keys}
  return tuple(l.name for l in model.layers
               if wrapper_lib.is_prunable(l) and l.name not in wrapped)


def load_network(run_dir, level, data, model_cfg, result=None):
  """Rebuilds the run's wrapped model (`model_cfg`, a `ModelSettings`) with
  level's weights."""
  net_dir = rundir.level_dir(run_dir, level)
  if result is None:
    result = rundir.read_json(rundir.result_path(net_dir))
  # Seed 0: the initial values do not matter, every variable (weights,
  # masks, theta_0, the rewind point) is restored from the level's final/.
  model = models.build_for(data, seed=0, cfg=model_cfg)
  wrapped = wrapper_lib.wrap(model, dense_layers=_dense_layers(model, result))
  rundir.load_weights(wrapped, rundir.final_dir(net_dir))
  return wrapped
