"""'sparse_training': RigL, SET, static sparse or GMP in `RUN/level_0`.

The method (`sparse_training.method`, a name in `algorithms.METHODS`) runs
through `training.MaskHook` on the one training loop. Initial masks:
per-layer sparsities from `sparse_training.distribution` ('uniform', 'er',
'erk' with `power_scale`), `custom_sparsity` overrides and, for 'uniform',
the first prunable layer dense unless `dense_first_layer=False` (as in the
RigL paper); random masks with exact counts (of whole blocks with
`sparse_training.block_size`), seeded with
`sparse_training.seed` (default: `training.seed`). Methods that start dense
(GMP) start from all-ones masks and take the sparsities as final targets.
The starting weights are written to `RUN/level_0/start/` (before the
hook's `begin`: for SNIP, which prunes there, `start/` is the dense
initialisation it prunes).
"""
from absl import logging

from tf_tickets import algorithms
from tf_tickets import masks as masks_lib
from tf_tickets import pruning
from tf_tickets import rundir
from tf_tickets import training
from tf_tickets.experiments.context import KINDS


def make_algorithm(model, cfg, seed, run, gmp=None):
  """The algorithm of `cfg` (a `SparseTrainingSettings`; `gmp` its
  `GMPSettings` for 'gmp') with the model's target sparsities, for the run
  `run` (`algorithms.RunSteps`)."""
  return algorithms.make(cfg, pruning.target_sparsities(model, cfg), seed,
                         run, masks_lib.weight_shapes(model), gmp=gmp,
                         units=masks_lib.unit_readers(model))


@KINDS.register('sparse_training')
def run(ctx):
  """Trains one sparse network in `RUN/level_0` and writes results.csv."""
  cfg = ctx.settings.sparse_training
  seed = cfg.seed if cfg.seed is not None else ctx.config.seed
  model = ctx.build_model()
  algorithm = make_algorithm(model, cfg, seed, training.run_steps(
      ctx.config, ctx.data.steps_per_epoch), gmp=ctx.settings.gmp)
  net_dir = rundir.level_dir(ctx.run_dir, 0)
  if not rundir.is_finished(net_dir) and not rundir.has_checkpoint(net_dir):
    pruning.initialize_masks(model, algorithm)
    logging.info('%s: target sparsities %s', cfg.method, ', '.join(
        f'{k} {s:.4f}' for k, s in algorithm.sparsities.items()))
    rundir.save_weights(model, rundir.start_dir(net_dir))
  result = ctx.train(model, net_dir, hooks=[training.MaskHook(algorithm)],
                     extra=dict(level=0, branch='sparse_training',
                                method=cfg.method, seed=seed))
  ctx.write_results([result])
  logging.info('%s: final density %.4f, test accuracy %.4f, FLOPs (of '
               'dense): inference %.4f, training %.4f', cfg.method,
               result['density'], result['test_accuracy'],
               result['inference_flops_fraction'],
               result['training_flops_fraction'])
  return [result]
