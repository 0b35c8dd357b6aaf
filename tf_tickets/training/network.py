"""One network in its directory: trained once, resumed, or loaded.

    NET_DIR/checkpoints/   in-progress checkpoints (see `Trainer`)
    NET_DIR/final/         trained weights (the completion marker)
    NET_DIR/result.json    the network's results row
"""
import os
import shutil

from absl import logging

from tf_tickets import rundir
from tf_tickets.errors import TicketsError
from tf_tickets.errors import first_line
from tf_tickets.training.loop import Trainer


def train_network(model, data, config, strategy, net_dir, hooks=(),
                  writer=None, quiet=False, extra=None, learning_rate=None,
                  start_step=0, stop_step=None):
  """Trains one network in `net_dir` unless it is finished already.

  Finished work (NET_DIR/final and NET_DIR/result.json exist) is never
  redone: the saved weights are loaded into `model` and the saved result is
  returned. Otherwise training resumes from the latest checkpoint, if any.

  Args:
    model: a wrapped model built in `strategy.scope()`, holding the starting
      weights and masks (ignored when a checkpoint exists).
    extra: dict of fields added to the result (e.g. level).
    start_step: the global step training starts at (late rewinding: a level
      rewound to theta_k trains steps k..T with the LR schedule and the data
      order of steps k..T).

  Returns:
    the result dict (what result.json holds).
  """
  if rundir.is_finished(net_dir):
    finished = load_finished(model, net_dir)
    if finished is not None:
      return finished
  os.makedirs(net_dir, exist_ok=True)
  trainer = Trainer(model, data, config, strategy, net_dir, hooks=hooks,
                    writer=writer, quiet=quiet, learning_rate=learning_rate,
                    start_step=start_step, stop_step=stop_step)
  try:
    result = trainer.fit()
  finally:
    if trainer.writer is not None and not callable(trainer.writer):
      trainer.writer.close()
  result.update(extra or {})
  rundir.save_weights(model, rundir.final_dir(net_dir))
  rundir.write_json(rundir.result_path(net_dir), result)
  # The trained weights are in final/; in-progress checkpoints are not needed.
  shutil.rmtree(rundir.checkpoints_dir(net_dir), ignore_errors=True)
  return result


def load_finished(model, net_dir):
  """The saved result of a finished network, its final weights loaded into
  `model`; None (after setting the damaged files aside with a warning and
  putting `model` back as it was) if final/ or result.json does not read,
  so that the network is trained again from its checkpoints or its start
  (deterministic: the same weights again)."""
  before = [v.numpy() for v in model.variables]
  try:
    result = rundir.read_result(net_dir)
    rundir.load_weights(model, rundir.final_dir(net_dir))
    return result
  except TicketsError as e:
    for v, value in zip(model.variables, before):
      v.assign(value)
    for path in (rundir.final_dir(net_dir), rundir.result_path(net_dir)):
      rundir.set_aside(path, f'unreadable ({first_line(e)})')
    logging.warning('%s: training this network again', net_dir)
    return None
