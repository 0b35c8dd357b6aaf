"""Reading TensorBoard event files back (for tests)."""
import glob
import os

import numpy as np
import tensorflow as tf


def read_events(directory):
  """All summary values in `directory`'s event files (not recursive).

  Returns a list of (tag, step, plugin_name, value) where value is a numpy
  array (scalars: 0-d; images: the encoded [width, height, png, ...] strings;
  text: a string array).
  """
  out = []
  pattern = os.path.join(directory, 'events.out.tfevents.*')
  for path in sorted(glob.glob(pattern)):
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      for value in event.summary.value:
        plugin = value.metadata.plugin_data.plugin_name
        if value.HasField('tensor'):
          array = tf.make_ndarray(value.tensor)
        elif value.HasField('simple_value'):
          array = np.array(value.simple_value)
        else:
          array = None
        out.append((value.tag, int(event.step), plugin, array))
  return out


def read_scalars(directory):
  """Dict tag -> {step: float} of the scalar summaries in `directory`."""
  out = {}
  for tag, step, plugin, value in read_events(directory):
    if plugin == 'scalars' and value is not None:
      out.setdefault(tag, {})[step] = float(value)
  return out
