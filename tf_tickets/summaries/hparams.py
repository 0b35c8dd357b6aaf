"""TensorBoard's HParams view of a set of runs (`python -m
tf_tickets.compare`): one trial per run, its hyperparameters and metric."""
import os

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp


def write_hparams(log_dir, names, trials, metric):
  """Writes the HParams experiment `names` x `metric` into `log_dir` and
  one trial per (trial_id, {name: value}, metric value or None) of
  `trials`, each in `log_dir/run_<i>`."""
  with tf.summary.create_file_writer(log_dir).as_default():
    hp.hparams_config(hparams=[hp.HParam(n) for n in names],
                      metrics=[hp.Metric(metric)])
  for i, (trial_id, values, value) in enumerate(trials):
    with tf.summary.create_file_writer(
        os.path.join(log_dir, f'run_{i}')).as_default():
      hp.hparams(values, trial_id=trial_id)
      if value is not None:
        tf.summary.scalar(metric, float(value), step=0)
