"""One event file per directory: a resumed network (or a rerun's lottery
summaries) opens a second writer, hence a second file; `compact` merges
them into one and drops the points an interrupted writer wrote past the
step where the next one resumed (they were trained again)."""
import glob
import os
import re

import tensorflow as tf


def _paths(directory):
  def when(path):  # events.out.tfevents.<unix time>.<host>.<pid>.<n>...
    found = re.search(r'tfevents\.(\d+(?:\.\d+)?)\.', os.path.basename(path))
    return (float(found.group(1)) if found else 0.0, os.path.getmtime(path),
            path)
  return sorted(glob.glob(os.path.join(directory, 'events.out.tfevents.*')),
                key=when)


def compact(directory):
  """Merges `directory`'s event files into its newest one (no writer may
  have them open); returns True if there was more than one."""
  paths = [p for p in _paths(directory) if not p.endswith('.tmp')]
  if len(paths) < 2:
    return False
  files = [[tf.compat.v1.Event.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(p)] for p in paths]
  kept = []
  for i, events in enumerate(files):
    later = [e.step for f in files[i + 1:] for e in f if e.HasField('summary')]
    cut = min(later) if later else None
    for event in events:
      if event.HasField('file_version'):
        if i == 0:
          kept.append(event)
      elif cut is None or event.step < cut:
        kept.append(event)
  tmp = paths[-1] + '.tmp'
  with tf.io.TFRecordWriter(tmp) as writer:
    for event in kept:
      writer.write(event.SerializeToString())
  os.replace(tmp, paths[-1])
  for path in paths[:-1]:
    os.remove(path)
  return True
