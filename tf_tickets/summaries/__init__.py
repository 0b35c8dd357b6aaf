"""TensorBoard sparsity dashboards: observers of a run.

* `network`: per-network sparsity scalars, histograms, mask images and
  sparse-training update figures (`SummaryHook`, added by `default_hooks`);
* `lottery`: run-level per-level lottery summaries (`LevelSummaries`);
* `layout`: the custom-scalars layout of a run directory.
"""
from tf_tickets.summaries.layout import layout
from tf_tickets.summaries.layout import write_layout
from tf_tickets.summaries.lottery import DENSITY_STEP_SCALE
from tf_tickets.summaries.lottery import LevelSummaries
from tf_tickets.summaries.lottery import density_step
from tf_tickets.summaries.lottery import jaccard
from tf_tickets.summaries.lottery import levels_table
from tf_tickets.summaries.network import TOTAL
from tf_tickets.summaries.network import Batch
from tf_tickets.summaries.network import SummaryHook
from tf_tickets.summaries.network import SummarySettings
from tf_tickets.summaries.network import default_hooks
from tf_tickets.summaries.network import fold_to_2d
from tf_tickets.summaries.network import mask_image
