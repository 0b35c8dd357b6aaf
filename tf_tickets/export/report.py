"""The export report: artifact sizes, the report dict written as
report.json, and its readable tables."""
import gzip
import io
import os
import tarfile

import numpy as np

from tf_tickets.export.checks import CHECKS

REPORT_FORMAT = 'tf_tickets.export/1'
REPORT_FILE = 'report.json'


def gzip_size(content):
  """Bytes after `gzip -6` (the gzip tool's default level; -9 is ~10x slower
  on float weights for a fraction of a percent)."""
  return len(gzip.compress(content, compresslevel=6, mtime=0))


def _dir_sizes(directory):
  total = 0
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w') as tar:
    for root, _, files in sorted(os.walk(directory)):
      for f in sorted(files):
        path = os.path.join(root, f)
        total += os.path.getsize(path)
        tar.add(path, arcname=os.path.relpath(path, directory))
  return total, gzip_size(buf.getvalue())


def artifact(name, path, content=None, dense_bytes=None, dense_gzip=None):
  """The size entry of an artifact (`content` bytes, else the directory
  `path` as a tar), with ratios to the dense float32 .tflite if known."""
  if content is not None:
    size, gz = len(content), gzip_size(content)
  else:
    size, gz = _dir_sizes(path)
  entry = dict(name=name, bytes=size, gzip_bytes=gz)
  if dense_bytes:
    entry['ratio_to_dense'] = size / dense_bytes
    entry['gzip_ratio_to_dense'] = gz / dense_gzip
  return entry


def _jsonable(value):
  if isinstance(value, dict):
    return {k: _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, np.generic):
    return value.item()
  return value


def assemble(*, model_name, data, source, quantize, formats, interpreter,
             reference, labels, artifacts, checks, sparsity, notes,
             failures, signature, raw_pixels=False):
  """The report dict (report.json without `output_dir`); `signature`:
  (name, dtype, shape) of the input (`converter.input_signature`);
  `raw_pixels`: the model takes raw pixels 0..255 (the zoo's models)."""
  name, dtype, shape = signature
  inputs = dict(name=name, dtype=dtype.name, shape=shape)
  if raw_pixels:
    inputs['range'] = 'raw pixels 0..255'
  return dict(
      format=REPORT_FORMAT, source=source, model=model_name,
      dataset=data.name, input=inputs,
      output=dict(name='logits', dtype='float32',
                  shape=[None, data.num_classes]),
      quantize=list(quantize), formats=list(formats),
      dense_kernels_per_tensor=True,
      interpreter=interpreter, runtime_options=runtime_options(artifacts),
      checks_config=CHECKS,
      keras_test_accuracy=float(np.mean(reference.argmax(-1) == labels)),
      check_examples=int(len(labels)), artifacts=artifacts, checks=checks,
      sparsity=_jsonable(sparsity), notes=notes, failures=failures,
      passed=not failures)


def runtime_options(artifacts):
  """{file: the `Interpreter` keyword arguments it needs} for every .tflite
  that does not run on LiteRT with the defaults (None: under no option)."""
  return {a['name']: a.get('litert_options') for a in artifacts
          if a.get('kind') == 'tflite' and not a.get('runs_with_defaults')}


def _runtime_lines(report):
  """How to load each .tflite on LiteRT, and why C arrays are dense."""
  tfl = [a for a in report['artifacts'] if a['kind'] == 'tflite']
  if not tfl:
    return []
  need = report.get('runtime_options') or {}
  lines = ['', f'LiteRT ({report["interpreter"]}), '
           'ai_edge_litert.interpreter.Interpreter(model_path=...):']
  ok = [a['name'] for a in tfl if a['name'] not in need]
  lines.append('  runs with the defaults (XNNPack delegate): '
               + (', '.join(ok) or 'none'))
  for option in dict.fromkeys(need.values()):
    names = [n for n, o in need.items() if o == option]
    lines.append(f'  needs {option}: ' if option else
                 '  runs under no option tried: ')
    lines[-1] += ', '.join(names)
  for a in tfl:
    native = {k: t['storage'] for k, t in (a.get('layers') or {}).items()
              if t['storage'].startswith('blocks')}
    others = [k for k in a.get('layers') or {} if k not in native]
    if native:
      lines.append(f'  {a["name"]}: run sparse (block storage): '
                   + ', '.join(f'{k} ({v[7:]})' for k, v in native.items())
                   + (f'; dense or densified at load: {", ".join(others)}'
                      if others else ''))
  for a in tfl:
    error = (a.get('litert_errors') or {}).get('default')
    if a['name'] in need and error:
      lines.append(f'    {a["name"]} with the defaults: {error}')
  if any(a.get('quantization') in ('dynamic', 'int8')
         and a.get('storage') == 'sparse'
         and not str((a.get('litert_errors') or {}).get('default', '')
                     ).startswith('wrong outputs')
         for a in tfl if a['name'] in need):
    lines.append('  (LiteRT\'s XNNPack delegate cannot prepare quantised '
                 'kernels whose int8 weights are stored sparse; in dense '
                 'storage they run with the defaults)')
  if any(a['kind'] == 'c_array' for a in report['artifacts']):
    lines.append('C arrays hold the dense-storage models: TFLite Micro has no '
                 'sparse tensor support (no DENSIFY kernel).')
  return lines


def summary_line(report, out):
  """The one line of a quiet export: OUT, and the files that need a LiteRT
  runtime option."""
  need = report.get('runtime_options') or {}
  by_option = {}
  for name, option in need.items():
    by_option.setdefault(option, []).append(name)
  return f'export: {out}' + ''.join(
      f'; {", ".join(names)} need{"s" if len(names) == 1 else ""} LiteRT\'s '
      f'{option}' for option, names in by_option.items())


def _parity_text(p):
  if not p:
    return ''
  if 'tolerance' in p:
    text = f'rel|d| {p["rel_diff"]:.1e} <= {p["tolerance"]:.0e}'
  else:
    text = (f'agree {p["agreement"]:.3f} >= {p["min_agreement"]}, '
            f'acc {p["accuracy"] - p["reference_accuracy"]:+.3f}')
  return text + ('' if p['passed'] else '  FAIL')


def _artifact_lines(report):
  lines = [f'{"artifact":22s} {"storage":7s} {"bytes":>11s} '
           f'{"gzipped":>11s} {"x dense":>8s} {"x gz":>6s} '
           f'{"sparse":>6s} {"acc":>6s} {"runtime":8s} parity']
  for a in report['artifacts']:
    if a['kind'] == 'c_array':
      lines.append(f'{a["name"]:22s} {"C":7s} {a["bytes"]:11,d} '
                   f'{"":>11s} {"":>8s} {"":>6s} {"":>6s} {"":>6s} '
                   f'{"":8s} embeds {a["embeds"]} ({a["array_bytes"]:,d} '
                   'bytes)')
      continue
    p = a.get('parity') or {}
    ratio = f'{a["ratio_to_dense"]:.4f}' if 'ratio_to_dense' in a else '-'
    gz = f'{a["gzip_ratio_to_dense"]:.3f}' if 'gzip_ratio_to_dense' in a \
        else '-'
    sparse = str(a.get('sparse_tensors', '-'))
    acc = f'{p["accuracy"]:.4f}' if p else ''
    lines.append(f'{a["name"]:22s} {a.get("storage", ""):7s} '
                 f'{a["bytes"]:11,d} {a["gzip_bytes"]:11,d} {ratio:>8s} '
                 f'{gz:>6s} {sparse:>6s} {acc:>6s} {a.get("runtime", ""):8s} '
                 f'{_parity_text(p)}')
  return lines


def _sparsity_lines(report):
  tfl = [a for a in report['artifacts'] if a['kind'] == 'tflite']
  lines = ['', 'kernel sparsity (non-zeros; d = dense storage, s = sparse '
           'storage densified at load, b = stored in blocks and run sparse; '
           '! = a pruned weight is not zero or an active one lost):']
  cols = ['saved_model'] + [a['name'].replace('.tflite', '') for a in tfl]
  lines.append(f'{"weight":26s} {"shape":>18s} {"params":>9s} '
               f'{"active":>8s} {"sparsity":>8s} '
               + ' '.join(f'{c[:13]:>13s}' for c in cols))
  sm = report['artifacts'][0].get('layers', {})
  for key, r in report['sparsity']['layers'].items():
    cells = []
    s = sm.get(key)
    cells.append(f'{s["nonzero"]}{"" if s["pruned_are_zero"] else "!"}'
                 if s else '-')
    for a in tfl:
      t = a.get('layers', {}).get(key)
      ok = t and t['pruned_are_zero'] and not t.get('lost')
      cells.append(f'{t["nonzero"]}{t["storage"][0]}{"" if ok else "!"}'
                   if t else '-')
    lines.append(f'{key[:26]:26s} {str(tuple(r["shape"])):>18s} '
                 f'{r["params"]:9d} {r["active"]:8d} {r["sparsity"]:8.4f} '
                 + ' '.join(f'{c:>13s}' for c in cells))
  return lines


def format_report(report):
  """The report as readable tables."""
  src = report.get('source') or {}
  sp = report.get('sparsity') or {}
  head = f'export of {report["model"]} ({report["dataset"]})'
  if src.get('run_dir'):
    head += f' from {src["run_dir"]} level {src["level"]}'
  if sp:
    head += (f': density {sp["density"]:.4f} (sparsity {sp["sparsity"]:.4f}, '
             f'{sp["active"]} of {sp["params"]} prunable weights)')
  lines = [head,
           'input: pixels float32 (None, '
           + ', '.join(str(d) for d in report['input']['shape'][1:])
           + ') raw 0..255; output: logits float32; checks on '
           f'{report["check_examples"]} test images (Keras accuracy '
           f'{report["keras_test_accuracy"]:.4f}); interpreter: '
           f'{report["interpreter"]}', '']
  lines += _artifact_lines(report)
  if sp:
    lines += _sparsity_lines(report)
  lines += _runtime_lines(report)
  for a in report['artifacts']:
    q = a.get('int8_input_quantization')
    if q:
      lines.append(f'{a["name"]}: float32 I/O; input quantised inside with '
                   f'scale {q["scale"]:.6g}, zero point {q["zero_point"]} '
                   f'(q = pixel / scale + zero point)')
  if report.get('compact'):
    lines += ['', 'compact network (compact/): '
              + ', '.join(a['name'] for a in report['compact']['artifacts'])]
    lines += report['compact']['lines']
  for n in report.get('notes', []):
    lines.append(f'note: {n}')
  for f in report.get('failures', []):
    lines.append(f'FAILED: {f}')
  lines.append(f'export {"passed" if report["passed"] else "FAILED"}: '
               f'{report.get("output_dir", "")}')
  return '\n'.join(lines)
