"""'dense': trains the dense network (all masks one) in `RUN/level_0`."""
from tf_tickets import rundir
from tf_tickets.experiments.context import KINDS


@KINDS.register('dense')
def run(ctx):
  model = ctx.build_model()
  result = ctx.train(model, rundir.level_dir(ctx.run_dir, 0),
                     extra=dict(level=0, branch='dense', method='dense',
                                seed=ctx.config.seed))
  ctx.write_results([result])
  return [result]
