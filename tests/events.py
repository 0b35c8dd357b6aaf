"""Reading TensorBoard event files back (for tests), raw or as TensorBoard
shows them."""
import contextlib
import glob
import json
import os
import subprocess
import tempfile
import time

import grpc
import numpy as np
import pytest
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


# ------------------------------------------------------------------------------
# What TensorBoard shows
# ------------------------------------------------------------------------------


@contextlib.contextmanager
def tensorboard(logdir, fast=True):
  """A TensorBoard data provider of `logdir`, loaded as `tensorboard
  --logdir` loads it with default settings.

  fast=True: the data server (`--load_fast=auto`, the default where its
  binary exists; skips the test elsewhere), which keeps, per run and tag,
  only points whose step is below that of every later point. fast=False:
  the Python loader (`--load_fast=false`, EventMultiplexer defaults,
  purge_orphaned_data on).
  """
  from tensorboard.backend.event_processing import data_provider
  from tensorboard.backend.event_processing import plugin_event_multiplexer
  if not fast:
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    yield data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    return
  from tensorboard.data import grpc_provider
  from tensorboard.data import server_ingester
  from tensorboard.util import grpc_util
  try:
    binary = server_ingester.get_server_binary()
  except server_ingester.NoDataServerError as e:
    pytest.skip(f'no TensorBoard data server: {e}')
  with tempfile.TemporaryDirectory() as tmp:
    port_file = os.path.join(tmp, 'port')
    proc = subprocess.Popen(
        [binary.path, f'--logdir={logdir}', '--reload=once', '--port=0',
         f'--port-file={port_file}', '--die-after-stdin'],
        stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
      deadline = time.time() + 30
      while not (os.path.exists(port_file)
                 and open(port_file).read().endswith('\n')):
        assert proc.poll() is None and time.time() < deadline, (
            'the TensorBoard data server did not start')
        time.sleep(0.05)
      addr = f'localhost:{int(open(port_file).read())}'
      creds, options = grpc_util.ChannelCredsType.LOCAL.channel_config()
      stub = grpc_provider.make_stub(
          grpc.secure_channel(addr, creds, options=options))
      provider = grpc_provider.GrpcDataProvider(addr, stub)
      _wait_until_loaded(provider, deadline)
      yield provider
    finally:
      proc.stdin.close()
      proc.terminate()
      proc.wait()


def _wait_until_loaded(provider, deadline):
  """Until two reads 0.2 s apart see the same non-empty scalar steps."""
  last = None
  while True:
    now = scalar_steps(provider)
    if now and now == last:
      return
    assert time.time() < deadline, 'the data server did not load the logdir'
    last = now
    time.sleep(0.2)


def scalar_steps(provider):
  """{run: {tag: [step, ...]}} of the scalars a data provider shows."""
  from tensorboard import context
  data = provider.read_scalars(context.RequestContext(), experiment_id='',
                               plugin_name='scalars', downsample=10**6)
  return {run: {tag: [p.step for p in points] for tag, points in tags.items()}
          for run, tags in data.items()}


def custom_scalars_layout(provider):
  """The CUSTOM SCALARS tab's layout: {section title: [chart title, ...]},
  as its plugin merges the layouts of every run."""
  from tensorboard import context
  from tensorboard.plugins import base_plugin
  from tensorboard.plugins.custom_scalar import custom_scalars_plugin
  plugin = custom_scalars_plugin.CustomScalarsPlugin(
      base_plugin.TBContext(data_provider=provider, logdir=''))
  merged = plugin.layout_impl(context.RequestContext(), '')
  merged = json.loads(merged) if isinstance(merged, str) else merged
  return {c['title']: [chart['title'] for chart in c.get('chart', [])]
          for c in merged.get('category', [])}
