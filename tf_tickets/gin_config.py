"""The gin adapter of the entrypoints: gin files in, plain settings out.

Only the command lines (`tf_tickets.runner`, `tf_tickets.export.cli`) and
tools use this module; nothing in the library reads gin. Every settings
class (`settings.SECTIONS`) is registered with gin under its namespace,
every model builder with options (`settings.OPTIONS`: `mlp.widths`, ...)
under its own, so that gin checks names at parse time. `sections()` then
builds each class from what gin binds (references such as
`model.builder = @my_models.cnn` resolved) and validates it.
"""
import contextlib
import dataclasses
import difflib
import inspect
import logging as std_logging
import os
import re

import gin

from tf_tickets import rundir
from tf_tickets import settings
from tf_tickets.errors import ConfigError

_REGISTERED = {}  # namespace -> gin configurable returning its bindings


def _bindings_function(namespace, parameters):
  """A gin configurable `namespace` that returns the arguments gin binds."""
  def bound(**kwargs):
    return kwargs
  bound.__signature__ = inspect.Signature(parameters)
  bound.__name__ = bound.__qualname__ = namespace
  return gin.external_configurable(bound, name=namespace, module='tf_tickets')


def register():
  """Registers every settings section and builder option namespace with
  gin (once per namespace; call after importing what defines them)."""
  keyword = inspect.Parameter.KEYWORD_ONLY
  for namespace, cls in settings.SECTIONS.items():
    if namespace not in _REGISTERED:
      _REGISTERED[namespace] = _bindings_function(namespace, [
          inspect.Parameter(f.name, keyword, default=f.default)
          for f in dataclasses.fields(cls)])
  for namespace, fn in settings.OPTIONS.items():
    if namespace not in _REGISTERED:
      _REGISTERED[namespace] = _bindings_function(namespace, [
          p.replace(kind=keyword)
          for p in inspect.signature(fn).parameters.values()
          if p.default is not p.empty])


def sections():
  """{namespace: validated settings} from gin's parsed bindings (defaults
  for what is not bound). Builder options go into `model.options`."""
  register()
  options = {ns: _REGISTERED[ns]() for ns in settings.OPTIONS}
  out = {}
  for namespace, cls in settings.SECTIONS.items():
    kwargs = _REGISTERED[namespace]()
    if namespace == 'model':
      kwargs['options'] = {ns: o for ns, o in options.items() if o}
    out[namespace] = cls(**kwargs)
  return out


def config_text():
  """The gin config as parsed (RUN/config.gin)."""
  return gin.config_str()


def operative_text():
  """The settings used (RUN/operative_config.gin), after `sections()`."""
  return gin.operative_config_str()


def overrides(gin_params):
  """Parses bindings such as "dataset.idx_dir = '/data'" (the export's
  --gin_param) into gin's config (so that bindings of your own functions
  apply too) and returns {namespace: {field: value}} of those that set
  tf_tickets settings."""
  register()
  with own_config():
    gin.clear_config()
    parse_config((), gin_params)
    mentioned = {selector.split('.')[-1] for _, selector in
                 gin.config._CONFIG}  # pylint: disable=protected-access
  parse_config((), gin_params)
  with gin.unlock_config():
    return {ns: gin.get_bindings(_REGISTERED[ns]) for ns in sorted(mentioned)
            if ns in _REGISTERED}


@contextlib.contextmanager
def own_config():
  """Runs the block with gin's configuration of its own and puts the
  caller's back afterwards: bindings, imports, singletons, the operative
  record and the lock."""
  c = gin.config
  saved = ({k: dict(v) for k, v in c._CONFIG.items()},  # pylint: disable=protected-access
           dict(c._SINGLETONS), set(c._IMPORTS),  # pylint: disable=protected-access
           dict(c._OPERATIVE_CONFIG), c._CONFIG_IS_LOCKED)  # pylint: disable=protected-access
  try:
    yield
  finally:
    config, singletons, imports, operative, locked = saved
    gin.clear_config()
    c._CONFIG.update(config)  # pylint: disable=protected-access
    c._SINGLETONS.update(singletons)  # pylint: disable=protected-access
    c._IMPORTS.update(imports)  # pylint: disable=protected-access
    c._OPERATIVE_CONFIG.update(operative)  # pylint: disable=protected-access
    c._set_config_is_locked(locked)  # pylint: disable=protected-access


def _not_path_not_found(record):
  """gin's package-resource reader logs a spurious error for every search
  path a relative include is not found in before the one it is found in,
  and its file reader one info line per include."""
  return not record.getMessage().startswith(('Path not found',
                                             'system_path_file_exists'))


def parse_config(gin_files, gin_params):
  """Parses gin files, then bindings, one source at a time, so that an
  error names its setting, its one source and, for a misspelt name, the
  names gin knows (`did you mean ...`)."""
  register()
  for path in gin_files:
    if not os.path.isfile(path):
      raise ConfigError('--gin_file', f'{path!r} does not exist or is not a '
                        'file')
    try:
      with open(path) as f:
        f.read()
    except OSError as e:
      raise ConfigError('--gin_file', f'cannot read {path!r}: {e}') from None
  root = std_logging.getLogger()
  if _not_path_not_found not in root.filters:  # once per process
    root.addFilter(_not_path_not_found)
  for path in gin_files:  # `include 'x.gin'` resolves beside the includer
    gin.add_config_file_search_path(os.path.dirname(os.path.abspath(path)))
  sources = [(path, lambda p=path: gin.parse_config_file(p))
             for path in gin_files]
  sources += [(f'--gin_param {b!r}', lambda b=b: gin.parse_config(b))
              for b in gin_params]
  for where, parse in sources:
    try:
      parse()
    except (ValueError, SyntaxError, KeyError, ImportError, TypeError,
            NameError) as e:
      raise _gin_error(e, where) from None


def parse_run_config(run_dir):
  """Parses a run's RUN/config.gin, if it has one, skipping what this
  process does not define: its `import` lines and the bindings of the
  user's own gin configurables apply again (e.g. to rebuild its model)."""
  path = rundir.config_gin_path(run_dir)
  if os.path.isfile(path):
    _parse_run_file(path, ())


def read_operative(run_dir, gin_params=()):
  """{namespace: settings} of RUN/operative_config.gin (+ `gin_params`):
  the settings of a run written before config.json held them."""
  path = rundir.operative_config_path(run_dir)
  _parse_run_file(path, gin_params)
  with gin.unlock_config():
    return sections()


def _parse_run_file(path, gin_params):
  register()
  try:
    gin.parse_config_files_and_bindings([path], list(gin_params),
                                        skip_unknown=True,
                                        finalize_config=False)
  except (ValueError, SyntaxError, KeyError, ImportError, TypeError,
          NameError) as e:
    msg = str(e).strip().replace('\n', ' ')
    raise ConfigError('--run_dir', f'cannot parse {path}: {msg}') from None


def read(gin_files, gin_params):
  """The validated settings of gin files and bindings (`parse_config` into
  a cleared gin config, then `sections()`)."""
  gin.clear_config()
  parse_config(gin_files, gin_params)
  with gin.unlock_config():
    return sections()


_UNKNOWN_PARAM = re.compile(
    r"Configurable '([\w.]+)' doesn't have a parameter named '(\w+)'")
_UNKNOWN_NAME = re.compile(r"No configurable matching '([\w./]+)'")


def _gin_error(e, where):
  """A ConfigError naming the setting of a gin parse error."""
  lines = str(e).strip().splitlines()
  line = re.search(r', line (\d+)', str(e))
  if line and not where.startswith('--gin_param'):
    where += f' line {line.group(1)}'
  unknown_param = _UNKNOWN_PARAM.search(lines[0] if lines else '')
  unknown_name = _UNKNOWN_NAME.search(lines[0] if lines else '')
  if unknown_param:
    namespace, param = unknown_param.groups()
    setting = f'{namespace}.{param}'
    valid = [f'{namespace}.{p}' for p in _parameters(namespace)]
    return ConfigError(setting, f'unknown setting (in {where})'
                       + _did_you_mean(setting, valid))
  if unknown_name:
    name = unknown_name.group(1)
    valid = sorted({selector.split('.')[-1] for selector, _ in
                    gin.config._REGISTRY.items()  # pylint: disable=protected-access
                    if not selector.startswith('gin.')})
    return ConfigError(name, f'unknown settings namespace (in {where})'
                       + _did_you_mean(name.split('.')[0], valid))
  text = ' '.join(l.strip() for l in lines[:1]) or type(e).__name__
  return ConfigError('gin config', f'{text} (in {where})')


def _parameters(namespace):
  try:
    configurable = gin.config._REGISTRY.get_match(namespace)  # pylint: disable=protected-access
  except (KeyError, ValueError):
    return []
  return list(inspect.signature(configurable.wrapped).parameters) \
      if configurable else []


def _did_you_mean(name, valid):
  close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
  hint = f'; did you mean {" or ".join(close)}?' if close else ''
  return hint + f' (valid: {", ".join(valid)})' if valid else hint
