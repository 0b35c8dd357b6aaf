"""Test set-up: tf_keras, two logical CPU devices for MirroredStrategy."""
import os
import sys

os.environ['TF_USE_LEGACY_KERAS'] = '1'
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

# What the command line sets for training.deterministic (its default).
tf.config.experimental.enable_op_determinism()
_cpus = tf.config.list_physical_devices('CPU')
try:
  tf.config.set_logical_device_configuration(
      _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
except RuntimeError:  # already initialised
  pass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, 'tests', 'data', 'fashion_mnist_small')


@pytest.fixture
def mirrored():
  from tf_tickets import training  # pylint: disable=g-import-not-at-top
  strategy = training.make_strategy('mirrored')  # one per process
  assert strategy.num_replicas_in_sync == 2
  return strategy


@pytest.fixture(autouse=True)
def _clear_gin():
  import gin  # pylint: disable=g-import-not-at-top
  gin.clear_config()
  yield
  gin.clear_config()
