"""One event file per directory: a resumed network (or a rerun's lottery
summaries) opens a second writer, hence a second file; `compact` merges
them into one and drops the points an interrupted writer wrote past the
step where the next one resumed (they were trained again)."""
import glob
import os
import re

import tensorflow as tf


def _paths(directory):
  """Event files in the order they were opened: by the creation time and
  the writer counter in their names (events.out.tfevents.<time>.<host>.
  <pid>.<counter>.v2); modification times change when a file is
  written to, so they do not tell."""
  def opened(path):
    found = re.search(r'tfevents\.(\d+)\..*\.(\d+)\.(\d+)(\.v2)?$',
                      os.path.basename(path))
    return ((int(found.group(1)), int(found.group(3))) if found else (0, 0),
            path)
  return sorted(glob.glob(os.path.join(directory, 'events.out.tfevents.*')),
                key=opened)


def _read(path):
  """The events of a file, up to a record a kill truncated."""
  events = []
  try:
    for record in tf.data.TFRecordDataset(path):
      events.append(tf.compat.v1.Event.FromString(record.numpy()))
  except tf.errors.DataLossError:
    pass
  return events


def compact(directory):
  """Merges `directory`'s event files into its newest one (no writer may
  have them open); returns True if there was more than one. Links are
  left alone: a non-chief worker's private copy links the chief's files,
  which only the chief compacts."""
  paths = [p for p in _paths(directory)
           if not p.endswith('.tmp') and not os.path.islink(p)]
  if len(paths) < 2:
    return False
  files = [_read(p) for p in paths]
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
