"""Exporting a network (`export_network`), any user model with its own
input signature (`export_model`) or a finished run's network
(`export_run`, and `after_run`, the training entrypoint's hook)."""
import os
import shutil

from absl import logging
import numpy as np

from tf_tickets import data as data_lib
from tf_tickets import masks
from tf_tickets import rundir
from tf_tickets import wrapper as wrapper_lib
from tf_tickets.errors import TicketsError
from tf_tickets.export import checks
from tf_tickets.export import compact as compact_lib
from tf_tickets.export import converter
from tf_tickets.export import decode
from tf_tickets.export import interpreter
from tf_tickets.export import micro
from tf_tickets.export import outdir
from tf_tickets.export import report as report_lib
from tf_tickets.export import run as run_lib
from tf_tickets.export.settings import parse_formats
from tf_tickets.export.settings import parse_quantize

COMPACT_EXAMPLES = 256  # the inputs `compact` checks its constants on
COMPACT_TOLERANCE = 1e-5  # compact vs masked logits, relative to their max
_ARTIFACTS = {  # quantisation -> (file stem, check kind)
    'none': ('float32', 'float32'),
    'dynamic': ('dynamic', 'dynamic'),
    'int8': ('int8', 'int8'),
    'float16': ('float16', 'float16'),
}


def after_run(run_dir, cfg, data, model_cfg, quiet=False):
  """Exports a finished run's network if `cfg` (its `ExportSettings`) asks
  for it (`export.formats`); the training entrypoint's hook, with the
  run's `data.Data` and `ModelSettings`. Returns the report, or None when
  `export.formats` is empty (the default: no export)."""
  if not cfg.formats:
    return None
  return export_run(run_dir, data=data, model_cfg=model_cfg,
                    formats=cfg.formats, quantize=cfg.quantize, quiet=quiet,
                    quantize_setting='export.quantize')


def export_run(run_dir, level=None, output_dir=None, quantize=('none',),
               formats=('saved_model', 'tflite'), data=None, model_cfg=None,
               overrides=None, num_examples=500, calibration_examples=300,
               quiet=False, quantize_setting='--quantize'):
  """Exports a run's network into OUT (default `RUN/export/level_<N>`).

  `level`: default the finished level of lowest density. The run's dataset
  and model come from RUN/config.json (`overrides`: {namespace: {field:
  value}} changed, e.g. a moved `dataset.idx_dir`) unless `data` (a
  `data.Data`) and `model_cfg` (a `ModelSettings`) are given. Returns the
  report (see `export_network`).
  """
  run_lib.check_run_dir(run_dir)
  quantize = parse_quantize(quantize, quantize_setting)
  formats = parse_formats(formats)
  level = run_lib.pick_level(run_dir, level)
  result = rundir.finished_levels(run_dir)[level]
  if output_dir is None:
    output_dir = rundir.export_dir(run_dir, level)
  outdir.check_output_dir(output_dir, run_dir)
  if data is None or model_cfg is None:
    dataset_cfg, stored_model = run_lib.load_run_settings(run_dir, overrides)
    model_cfg = model_cfg or stored_model
    if data is None:
      data = run_lib.load_run_dataset(dataset_cfg)
  model = run_lib.load_network(run_dir, level, data, model_cfg, result)
  source = dict(run_dir=os.path.abspath(run_dir), level=level,
                density=result.get('density'),
                test_accuracy=result.get('test_accuracy'),
                branch=result.get('branch'), method=result.get('method'))
  return export_network(model, data, output_dir, quantize=quantize,
                        formats=formats, num_examples=num_examples,
                        calibration_examples=calibration_examples,
                        source=source, run_dir=run_dir,
                        quantize_setting=quantize_setting, quiet=quiet)


def export_network(model, data, output_dir, quantize=('none',),
                   formats=('saved_model', 'tflite'), num_examples=500,
                   calibration_examples=300, source=None, run_dir=None,
                   quantize_setting='--quantize', quiet=False):
  """Exports a wrapped (or plain) tf_keras model; returns the report dict.

  Args:
    model: the network, as training holds it (TicketWrappers) or plain.
    data: a `data.Data` (test images for the checks, training images for
      int8 calibration).
    output_dir: OUT; written atomically (a temporary directory renamed into
      place once every check passed; `OUT.failed/` otherwise).
    quantize: quantised variants besides float32 (see QUANTIZATIONS).
    formats: see `ExportSettings`; the CLI uses ('saved_model', 'tflite')
      plus 'c_array' with --c_array.
    num_examples: test images of the self-checks.
    calibration_examples: training images that calibrate int8.
    source: dict describing where the network came from (run, level, ...).
    run_dir: the run directory, which OUT must not be or contain.
    quantize_setting: the setting named in quantisation errors.
    quiet: print one line instead of the report's tables.

  Raises:
    TicketsError: a check failed (the artifacts are left in OUT.failed/).
  """
  quantize = parse_quantize(quantize, quantize_setting)
  formats = parse_formats(formats)
  tmp = outdir.prepare(output_dir, run_dir)
  try:
    report = _export_into(tmp, model, data, quantize, formats, num_examples,
                          calibration_examples, source or {},
                          quantize_setting)
    report['output_dir'] = os.path.abspath(output_dir)
    rundir.write_json(os.path.join(tmp, report_lib.REPORT_FILE), report)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  if not report['passed']:
    failed = outdir.set_aside(tmp, output_dir)
    if not quiet:
      print(report_lib.format_report(report), flush=True)
    raise TicketsError(
        'export check failed: ' + '; '.join(report['failures'])
        + f' (artifacts and report.json left in {failed}; '
        + _what_to_do(report['failures'], quantize, quantize_setting) + ')')
  out = outdir.publish(tmp, output_dir)
  print(report_lib.summary_line(report, out) if quiet
        else report_lib.format_report(report), flush=True)
  return report


def export_model(model, output_dir, examples, calibration=None,
                 quantize=('none',), formats=('saved_model', 'tflite'),
                 quiet=False):
  """Exports any one-input tf_keras classifier (wrapped or plain) with its
  own input signature (e.g. int32 token ids, or float images) and the same
  checks as a run's export; returns the report dict.

  Args:
    model: the network (TicketWrappers or plain layers).
    output_dir: OUT, written atomically (`OUT.failed/` if a check fails).
    examples: (x, y) arrays: inputs (in the model's input dtype, or uint8
      pixels for a float image input) and integer labels of the parity and
      LiteRT checks.
    calibration: inputs that calibrate int8 (`quantize` with 'int8'), e.g.
      a few hundred training examples; None: the check inputs.
    quantize, formats, quiet: as `export_network`.
  """
  x, y = (np.asarray(a) for a in examples)
  if len(x) == 0 or len(x) != len(y):
    raise TicketsError(f'examples: need (x, y) of the same positive length, '
                       f'got {len(x)} inputs and {len(y)} labels')
  calibration = x if calibration is None else np.asarray(calibration)
  data = data_lib.Data(
      name='examples', x_train=calibration,
      y_train=np.zeros(len(calibration), np.int64), x_val=x[:0],
      y_val=y[:0], x_test=x, y_test=y,
      num_classes=int(model.outputs[0].shape[-1]), mean=(0.0,), std=(1.0,),
      batch_size=1, augment=False)
  return export_network(model, data, output_dir, quantize=quantize,
                        formats=formats, num_examples=len(x),
                        calibration_examples=len(calibration),
                        quantize_setting='quantize', quiet=quiet)


def _what_to_do(failures, quantize, setting):
  """The advice of a failed export: the quantisations that passed."""
  failed = {q for q in quantize for f in failures
            if f.startswith(_ARTIFACTS[q][0] + '.tflite:')}
  if failed and set(quantize) - failed:
    keep = ','.join(q for q in quantize if q not in failed)
    return (f'the other files passed: export them with {setting}={keep}, '
            'and report the failing variant as a bug')
  return ('every check is in report.json; a failing check of the stripped '
          'network or the SavedModel is a bug to report')


def _variants(quantize, formats):
  """[(file stem, quantisation, sparse storage, check kind)] to convert."""
  variants = [('float32_dense', 'none', False, 'float32')]
  for q in ('none',) + tuple(v for v in quantize if v != 'none'):
    stem, kind = _ARTIFACTS[q]
    variants.append((stem, q, True, kind))
  if 'c_array' in formats and 'int8' in quantize:
    variants.append(('int8_dense', 'int8', False, 'int8'))
  return variants


def _run_on_litert(entry, path, inputs, reference, labels, kind):
  """Runs the written .tflite on LiteRT under the first runtime option that
  loads it and passes the parity check against the Keras model (LiteRT
  2.3's XNNPack computes wrong outputs for some block-sparse dynamic-range
  kernels: measured on a 784-2048-2048-10 MLP, logits off by 2e4, right on
  the builtin kernels); records it in `entry` with the parity; returns the
  failures (without the file name)."""
  def check(logits):
    failures = checks.parity(reference, logits, labels, kind)['failures']
    return '; '.join(failures) or None

  logits, runtime, errors = interpreter.run_tflite(path, inputs, check=check)
  entry['litert_runtime'] = runtime
  entry['runs_with_defaults'] = runtime == 'default'
  entry['litert_errors'] = errors
  if runtime is None:
    entry['runtime'] = 'none'
    entry['parity'] = None
    return ['does not run on LiteRT\'s interpreter under any option '
            'tried: ' + '; '.join(f'{k}: {v}' for k, v in errors.items())]
  entry['litert_options'] = interpreter.RUNTIMES[runtime][0]
  entry['runtime'] = interpreter.RUNTIMES[runtime][1]
  entry['parity'] = checks.parity(reference, logits, labels, kind)
  return list(entry['parity']['failures'])


def _tflite_variant(out, sm_dir, stem, q, sparse, kind, calibration, setting,
                    kernels, inputs, reference, labels, dense_bytes,
                    dense_gzip):
  """Converts, writes and checks one .tflite variant (OUT/<stem>.tflite).

  Returns (bytes, report entry, failures without the file name, notes).
  """
  logging.info('converting %s (%s storage)', stem,
               'sparse' if sparse else 'dense')
  content = converter.convert(sm_dir, q, sparse, calibration, setting)
  path = os.path.join(out, stem + '.tflite')
  with open(path, 'wb') as f:
    f.write(content)
  if dense_bytes is None:  # float32_dense itself: the size baseline
    dense_bytes, dense_gzip = len(content), report_lib.gzip_size(content)
  entry = report_lib.artifact(stem + '.tflite', None, content, dense_bytes,
                              dense_gzip)
  entry.update(kind='tflite', quantization=q,
               storage='sparse' if sparse else 'dense')
  failures = _run_on_litert(entry, path, inputs, reference, labels, kind)
  structure = decode.model_structure(content)
  entry['ops'] = sorted(set(structure['ops']))
  entry['densify_ops'] = structure['densify']
  entry['sparse_tensors'] = structure['sparse_tensors']
  layers, bad, notes = checks.check_tflite_kernels(structure, kernels)
  entry['layers'] = layers
  failures += bad
  if q == 'int8':
    entry['int8_input_quantization'] = (
        interpreter.int8_input_quantization(content))
  return content, entry, failures, notes


def _export_into(out, model, data, quantize, formats, num_examples,
                 calibration_examples, source, setting):
  """Writes every artifact into `out`, checks them; returns the report."""
  has_wrappers = bool(wrapper_lib.wrappers(model))
  stripped = wrapper_lib.strip(model) if has_wrappers else model
  x = data.x_test[:num_examples]
  y = data.y_test[:num_examples].astype(np.int64)
  name, dtype, _ = converter.input_signature(stripped)
  inputs = x.astype(dtype.as_numpy_dtype)  # uint8 pixels as float32
  reference = checks.reference_logits(stripped, x, y)
  failures, notes, artifacts = [], [], []
  check_results = {}
  sparsity = masks.sparsity_report(model) if has_wrappers else None
  kernels = checks.prunable_kernels(model, stripped) if has_wrappers else []
  if has_wrappers:
    check_results['strip'] = checks.parity(
        reference, checks.reference_logits(model, x, y), y, 'float32')
    failures += [f'stripped vs wrapped model: {f}'
                 for f in check_results['strip']['failures']]

  logging.info('writing the SavedModel')
  sm_dir = os.path.join(out, 'saved_model')
  converter.save_saved_model(stripped, sm_dir)
  sm = checks.check_saved_model(sm_dir, kernels, inputs, reference, y, name)
  failures += [f'saved_model: {f}' for f in sm['failures']]

  tflite = {}
  dense_bytes = dense_gzip = None
  want_tflite = 'tflite' in formats or 'c_array' in formats
  if want_tflite:
    calibration = (data.x_train[:calibration_examples].astype(
        dtype.as_numpy_dtype) if 'int8' in quantize else None)
    for stem, q, sparse, kind in _variants(quantize, formats):
      content, entry, bad, layer_notes = _tflite_variant(
          out, sm_dir, stem, q, sparse, kind, calibration, setting, kernels,
          inputs, reference, y, dense_bytes, dense_gzip)
      if bad and sparse:
        # A runtime that cannot run (or computes wrong) the sparse storage:
        # the same variant in dense storage, said in the report.
        logging.warning('%s.tflite in sparse storage fails its check (%s); '
                        'writing it in dense storage', stem, bad[0])
        content, entry, dense_bad, layer_notes = _tflite_variant(
            out, sm_dir, stem, q, False, kind, calibration, setting, kernels,
            inputs, reference, y, dense_bytes, dense_gzip)
        entry['sparse_storage_failures'] = bad
        if not dense_bad:
          layer_notes.append(
              'written in dense storage: in sparse storage it failed its '
              'check (' + '; '.join(bad) + ')')
        bad = dense_bad
      tflite[stem] = content
      if stem == 'float32_dense':  # the size baseline of the others
        dense_bytes, dense_gzip = entry['bytes'], entry['gzip_bytes']
      failures += [f'{stem}.tflite: {f}' for f in bad]
      notes += [f'{stem}.tflite: {n}' for n in layer_notes]
      artifacts.append(entry)

  sm_entry = report_lib.artifact('saved_model/', sm_dir, None, dense_bytes,
                                 dense_gzip)
  sm_entry.update(kind='saved_model', storage='dense', runtime='tensorflow',
                  parity={k: v for k, v in sm.items() if k != 'layers'},
                  layers=sm['layers'])
  artifacts.insert(0, sm_entry)
  if 'c_array' in formats:
    artifacts += micro.write_c_arrays(out, tflite, data.input_shape)
  if not ('saved_model' in formats or want_tflite or 'compact' in formats):
    notes.append('no formats requested; only the SavedModel was written')

  compact = None
  if 'compact' in formats:
    compact = _export_compact(out, stripped, data, quantize, formats,
                              num_examples, calibration_examples, setting,
                              x, y, inputs, reference)
    failures += [f'compact: {f}' for f in compact['failures']]
  report = report_lib.assemble(
      model_name=stripped.name, data=data, source=source, quantize=quantize,
      signature=converter.input_signature(stripped),
      raw_pixels=stripped.input_names == ['pixels'],
      formats=formats, interpreter=interpreter.interpreter_name(),
      reference=reference, labels=y, artifacts=artifacts,
      checks=check_results, sparsity=sparsity, notes=notes,
      failures=failures)
  if compact is not None:
    report['compact'] = compact
  return report


def _export_compact(out, stripped, data, quantize, formats, num_examples,
                    calibration_examples, setting, x, y, inputs, reference):
  """OUT/compact/: the network without its empty units, exported and
  checked like the network itself; its widths, multiply-adds and its
  parity against the masked network (at most 1e-5 relative)."""
  smaller, report = compact_lib.compact_model(stripped,
                                              inputs[:COMPACT_EXAMPLES])
  logits = checks.reference_logits(smaller, x, y).astype(np.float64)
  diff = float(np.max(np.abs(logits - reference)))
  relative = diff / max(float(np.max(np.abs(reference))), 1e-12)
  report['parity'] = dict(max_abs=diff, max_rel=relative,
                          examples=int(len(inputs)))
  failures = [] if relative <= COMPACT_TOLERANCE else [
      f'the compact network differs from the masked one by {relative:.2e} '
      f'relative (more than {COMPACT_TOLERANCE:g})']
  sub = _export_into(os.path.join(out, 'compact'), smaller, data, quantize,
                     tuple(f for f in formats if f != 'compact'),
                     num_examples, calibration_examples, {}, setting)
  report.update(artifacts=sub['artifacts'],
                lines=compact_lib.format_report(report),
                failures=failures + sub['failures'])
  return report
