"""Control branches of a lottery run (`lottery.branch`).

* 'random_reinit': the level's masks, a fresh initialisation drawn from the
  same initializers (new seed);
* 'random_prune': random masks with the level's per-layer densities, the
  same rewind point (random whole units with `lottery.structure`).

A new branch is a `lottery.Branch` subclass with `prepare` and a
`@BRANCHES.register('name')` line.
"""
from tf_tickets import masks as masks_lib
from tf_tickets import rundir
from tf_tickets.experiments.lottery import BRANCHES
from tf_tickets.experiments.lottery import Branch
from tf_tickets.experiments.lottery import rewind_to


@BRANCHES.register('random_reinit')
class RandomReinit(Branch):
  """The ticket's masks with a fresh draw from the same initializers."""

  def prepare(self, ctx, model, cfg, level):
    rundir.load_weights(model, rundir.start_dir(
        rundir.level_dir(ctx.run_dir, level)))
    masks_lib.reinitialize(model, self.seed(cfg, level))


@BRANCHES.register('random_prune')
class RandomPrune(Branch):
  """Random masks with the ticket's per-layer densities, same rewinding."""

  def prepare(self, ctx, model, cfg, level):
    ticket = rundir.read_result(rundir.level_dir(ctx.run_dir, level))
    rundir.load_weights(model, rundir.final_dir(
        rundir.level_dir(ctx.run_dir, level - 1)))
    masks_lib.prune_randomly(
        model, {k: 1.0 - d for k, d in ticket['layer_density'].items()},
        self.seed(cfg, level), cfg.block_size, cfg.structure)
    rewind_to(model, cfg)
