"""tf_tickets: lottery tickets and sparse training for TensorFlow / tf_keras.

Importing the package makes TensorFlow use tf_keras (Keras 2): it sets
`TF_USE_LEGACY_KERAS=1` before TensorFlow is imported, which tfmot needs.
The public API below is loaded on first use (PEP 562), so that the command
lines answer `--help` without loading TensorFlow.
"""
import importlib
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

__version__ = '0.1.0'

# Public name -> module that defines it.
_API = {
    'keras': 'tf_tickets.keras',
    'distributions': None,  # the module itself
    'pruning': None,
    'callbacks': None,
    'export': None,
    'ConfigError': 'tf_tickets.errors',
    'KerasVersionError': 'tf_tickets.errors',
    'TicketsError': 'tf_tickets.errors',
    'prune_by_magnitude': 'tf_tickets.pruning',
    'run_lottery': 'tf_tickets.experiments.driver',
    'init_masks': 'tf_tickets.masks',
    'prune_randomly': 'tf_tickets.masks',
    'rewind': 'tf_tickets.masks',
    'set_rewind_point': 'tf_tickets.masks',
    'sparsity_report': 'tf_tickets.masks',
    'TicketWrapper': 'tf_tickets.wrapper',
    'strip': 'tf_tickets.wrapper',
    'wrap': 'tf_tickets.wrapper',
}

__all__ = sorted(_API)


def __getattr__(name):
  if name not in _API:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  if _API[name] is None:
    value = importlib.import_module(f'{__name__}.{name}')
  else:
    value = getattr(importlib.import_module(_API[name]), name)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(_API))
