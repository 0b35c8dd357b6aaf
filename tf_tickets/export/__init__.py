"""Edge export of a trained network: SavedModel, sparse TFLite, quantised
variants, TFLite Micro C arrays.

    python -m tf_tickets.export --run_dir=RUN [--level=N] [--output_dir=OUT]
        [--quantize=none|dynamic|int8|float16 ...] [--c_array]

picks a run's final network (for a lottery run the sparsest finished level,
i.e. the lowest density in the levels' result.json, unless `--level` says
otherwise; a dense or sparse-training run has only `level_0`), strips the
prune wrappers and writes into OUT (default `RUN/export/level_N`; nothing
else in the run directory is touched):

    saved_model/           TF SavedModel, signature `serving_default`:
                           pixels float32 (None, H, W, C) -> logits float32
                           (None, num_classes)
    float32_dense.tflite   float32, dense storage: the baseline every size
                           ratio is measured against
    float32.tflite         float32 with sparse weight storage
                           (`tf.lite.Optimize.EXPERIMENTAL_SPARSITY`)
    dynamic.tflite         --quantize=dynamic: int8 weights, float
                           activations (dynamic range), sparse storage
    int8.tflite            --quantize=int8: full integer, calibrated on the
                           first `calibration_examples` training images,
                           sparse storage
    float16.tflite         --quantize=float16: float16 weights, sparse storage
    *.cc / *.h             --c_array: TFLite Micro C arrays of the models
                           with dense storage (float32_dense and, with int8,
                           int8_dense.tflite); see `micro`
    report.json            sizes, ratios, parity, sparsity (also printed)

Input contract (every artifact): float32 raw pixels in 0..255 with the
dataset's shape (H, W, C) - the models normalise in their first layer, so
an app feeds camera pixels directly - and float32 logits out. The int8 model
keeps float32 input and output too; its input quantisation is reported as
`int8_input_quantization` (for full-range images scale 1.0 and zero point
-128, i.e. q = pixel - 128). 'dynamic' and 'int8' quantise Dense kernels
per tensor and convolutions per output channel (see `convert`).

Sparse storage: the converter stores a pruned kernel in TFLite's sparse
format and inserts a DENSIFY op in front of its user, for float32, float16,
dynamic-range and int8 kernels; the report gives per artifact the number of
sparse-encoded tensors and DENSIFY ops and the bytes against the dense
conversion.

Every export checks itself on the first `num_examples` test images (parity
with the Keras model, pruned weights still zero in every artifact; see
`checks` and CHECKS). A failed check raises `TicketsError` (the CLI prints
one final line `error: ...` and exits 1); the artifacts are then left in
`OUT.failed/` and OUT is not replaced. The checks run on LiteRT's
interpreter with its XNNPack delegate; a model the delegate refuses is
checked on the builtin kernels and the report says so (an app must then
disable XNNPack for it).

The training entrypoint calls `after_run` at the end of a run: it exports
when gin sets `export.formats` (see `ExportSettings`).

Modules: settings (gin `export.*`), run (reading a finished run), converter
(SavedModel, TFLite), interpreter, decode (TFLite tensors back to arrays),
checks, micro (C arrays), report, outdir (OUT, written atomically), core
(export_network, export_run, after_run), cli.
"""
from tf_tickets.export.checks import CHECKS
from tf_tickets.export.checks import parity
from tf_tickets.export.cli import define_flags
from tf_tickets.export.cli import main
from tf_tickets.export.converter import convert
from tf_tickets.export.converter import save_saved_model
from tf_tickets.export.core import after_run
from tf_tickets.export.core import export_network
from tf_tickets.export.core import export_run
from tf_tickets.export.decode import densify
from tf_tickets.export.decode import model_structure
from tf_tickets.export.interpreter import interpreter_module
from tf_tickets.export.interpreter import make_interpreter
from tf_tickets.export.interpreter import run_tflite
from tf_tickets.export.micro import c_array
from tf_tickets.export.outdir import check_output_dir
from tf_tickets.export.report import REPORT_FORMAT
from tf_tickets.export.report import format_report
from tf_tickets.export.run import check_run_dir
from tf_tickets.export.run import load_network
from tf_tickets.export.run import load_run_config
from tf_tickets.export.run import pick_level
from tf_tickets.export.settings import ExportSettings
from tf_tickets.export.settings import FORMATS
from tf_tickets.export.settings import QUANTIZATIONS
from tf_tickets.export.settings import parse_formats
from tf_tickets.export.settings import parse_quantize

__all__ = [
    'CHECKS', 'ExportSettings', 'FORMATS', 'QUANTIZATIONS', 'REPORT_FORMAT',
    'after_run', 'c_array', 'check_output_dir', 'check_run_dir', 'convert',
    'define_flags', 'densify', 'export_network', 'export_run',
    'format_report', 'interpreter_module', 'load_network', 'load_run_config',
    'main', 'make_interpreter', 'model_structure', 'parity', 'parse_formats',
    'parse_quantize', 'pick_level', 'run_tflite', 'save_saved_model',
]
