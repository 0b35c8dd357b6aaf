"""tf_tickets: lottery tickets and sparse training for TensorFlow / tf_keras.

Importing the package makes TensorFlow use tf_keras (Keras 2): it sets
`TF_USE_LEGACY_KERAS=1` before TensorFlow is imported, which tfmot needs.
"""
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# pylint: disable=g-import-not-at-top,wrong-import-position
from tf_tickets.keras import keras
from tf_tickets import distributions
from tf_tickets.errors import ConfigError
from tf_tickets.errors import KerasVersionError
from tf_tickets.errors import TicketsError
from tf_tickets.algorithms import prune_by_magnitude
from tf_tickets.masks import init_masks
from tf_tickets.masks import prune_randomly
from tf_tickets.masks import rewind
from tf_tickets.masks import set_rewind_point
from tf_tickets.masks import sparsity_report
from tf_tickets.wrapper import TicketWrapper
from tf_tickets.wrapper import strip
from tf_tickets.wrapper import wrap

__version__ = '0.1.0'

__all__ = [
    'ConfigError', 'KerasVersionError', 'TicketWrapper', 'TicketsError',
    'distributions', 'init_masks', 'keras', 'prune_by_magnitude',
    'prune_randomly', 'rewind', 'set_rewind_point', 'sparsity_report',
    'strip', 'wrap',
]
