"""Reading a finished training run: its levels, its gin config, its data and
its network (nothing in the run directory is written)."""
import os

import gin

from tf_tickets import data as data_lib
from tf_tickets import models
from tf_tickets import rundir
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
  if not os.path.isfile(rundir.operative_config_path(run_dir)):
    raise ConfigError(setting, f'{run_dir!r} is not a tf_tickets run (no '
                      'operative_config.gin); give the --output_dir of a '
                      'tf_tickets.train run')
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


def load_run_config(run_dir, gin_params=()):
  """Parses `RUN/operative_config.gin` (+ overrides) into gin's config.

  Export needs only the `dataset.*` and `model.*` bindings, whose
  configurables live in `tf_tickets.data` and `tf_tickets.models`; the
  bindings of configurables this process has not imported (training,
  lottery, sparse training, summaries, ...) are skipped.
  """
  path = rundir.operative_config_path(run_dir)
  gin.clear_config()
  try:
    gin.parse_config_files_and_bindings([path], list(gin_params),
                                        skip_unknown=True,
                                        finalize_config=False)
  except (ValueError, SyntaxError, KeyError, ImportError, TypeError,
          NameError) as e:
    msg = str(e).strip().replace('\n', ' ')
    where = f'{path} with --gin_param {list(gin_params)}' if gin_params \
        else path
    raise ConfigError('--gin_param' if gin_params else '--run_dir',
                      f'cannot parse {where}: {msg}') from None


def load_run_dataset():
  """`data.load_dataset()` under the run's config; errors say how to
  override a setting of the run (e.g. when the data moved)."""
  try:
    return data_lib.load_dataset()
  except ConfigError as e:
    # gin appends a line naming the configurable; keep the message only.
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


def load_network(run_dir, level, data, result=None):
  """Rebuilds the run's wrapped model (gin-configured) with level's weights."""
  net_dir = rundir.level_dir(run_dir, level)
  if result is None:
    result = rundir.read_json(rundir.result_path(net_dir))
  # Seed 0: the initial values do not matter, every variable (weights,
  # masks, theta_0, the rewind point) is restored from the level's final/.
  model = models.build_for(data, seed=0)
  wrapped = wrapper_lib.wrap(model, dense_layers=_dense_layers(model, result))
  rundir.load_weights(wrapped, rundir.final_dir(net_dir))
  return wrapped
