"""TensorBoard sparsity dashboards: observers of a run.

* `network`: per-network sparsity scalars, histograms, mask views and
  sparse-training update figures (`SummaryHook`, added by `default_hooks`);
* `views`: the mask views (per-unit density, connections per input
  position of a Dense layer on a flattened image);
* `lottery`: run-level per-level lottery summaries (`LevelSummaries`);
* `figures`: the papers' figures from results rows (also
  tools/plot_tickets.py), written per level as an image;
* `scalars`: the loop's own figures (loss, evaluations, FLOPs, mask-update
  totals), written whether or not summaries are enabled (`TrainingScalars`);
* `batch`: summary values written with one op (`Batch`);
* `eventfiles`: one event file per directory after a resume (`compact`);
* `layout`: the custom-scalars layout, one section per observer.
"""
from tf_tickets.summaries.eventfiles import compact as compact_events
from tf_tickets.summaries.layout import write_layout
from tf_tickets.summaries.hparams import write_hparams
from tf_tickets.summaries.lottery import LevelSummaries
from tf_tickets.summaries.lottery import jaccard
from tf_tickets.summaries.lottery import levels_table
from tf_tickets.summaries.network import TOTAL
from tf_tickets.summaries.batch import Batch
from tf_tickets.summaries.network import SummaryHook
from tf_tickets.summaries.network import SummarySettings
from tf_tickets.summaries.network import default_hooks
from tf_tickets.summaries.scalars import TrainingScalars
from tf_tickets.summaries.scalars import file_writer
from tf_tickets.summaries.scalars import write_stability
from tf_tickets.summaries.views import connections_image
from tf_tickets.summaries.views import fit_image
from tf_tickets.summaries.views import image_inputs
from tf_tickets.summaries.views import input_connections
from tf_tickets.summaries.views import unit_axes
from tf_tickets.summaries.views import unit_density
