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
                           int8_dense.tflite): TFLite Micro has no sparse
                           tensor support; see `micro`
    report.json            sizes, ratios, parity, sparsity, LiteRT runtime
                           options (also printed)

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
`OUT.failed/` and OUT is not replaced.

Every .tflite is loaded from its file the way an app does, with LiteRT's
`ai_edge_litert.interpreter.Interpreter(model_path=...)` and its defaults
(XNNPack delegate). A file that does not load or run so is checked under
the runtime option it needs (`interpreter.RUNTIMES`; builtin kernels:
`experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES`),
and report.json (`runtime_options`; per artifact `litert_runtime`,
`litert_options`) and the printed report name it. LiteRT 2.3's XNNPack
delegate cannot prepare quantised FULLY_CONNECTED (and dynamic-range
CONV_2D) kernels stored sparse, so dynamic.tflite and int8.tflite need that
option (see `interpreter`). A file that runs under no option fails the
export.

The training entrypoint calls `after_run` at the end of a run: it exports
when `export.formats` is set (see `ExportSettings`).

Modules: settings (gin `export.*`), run (reading a finished run), converter
(SavedModel, TFLite), interpreter, decode (TFLite tensors back to arrays),
checks, compact (the network without its empty units), micro (C arrays),
report, outdir (OUT, written atomically), core
(export_network, export_run, after_run), cli. The names below are loaded
on first use (PEP 562), so that `--help` answers without TensorFlow;
`ExportSettings` (the `export.*` section) is defined on import.
"""
import importlib

from tf_tickets.export.settings import ExportSettings
from tf_tickets.export.settings import FORMATS
from tf_tickets.export.settings import QUANTIZATIONS
from tf_tickets.export.settings import parse_formats
from tf_tickets.export.settings import parse_quantize

# Public name -> the module of tf_tickets.export that defines it.
_API = {
    'CHECKS': 'checks', 'parity': 'checks',
    'define_flags': 'cli', 'main': 'cli',
    'compact_model': 'compact', 'FoldedConv2D': 'compact',
    'convert': 'converter', 'save_saved_model': 'converter',
    'after_run': 'core', 'export_network': 'core', 'export_run': 'core',
    'export_model': 'core',
    'densify': 'decode', 'model_structure': 'decode',
    'RUNTIMES': 'interpreter', 'interpreter_name': 'interpreter',
    'make_interpreter': 'interpreter', 'run_tflite': 'interpreter',
    'c_array': 'micro',
    'check_output_dir': 'outdir',
    'REPORT_FORMAT': 'report', 'format_report': 'report',
    'check_run_dir': 'run', 'load_network': 'run', 'load_run_settings': 'run',
    'pick_level': 'run',
}

__all__ = sorted(set(_API) | {'ExportSettings', 'FORMATS', 'QUANTIZATIONS',
                              'parse_formats', 'parse_quantize'})


def __getattr__(name):
  if name not in _API:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  value = getattr(importlib.import_module(f'{__name__}.{_API[name]}'), name)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(_API))
