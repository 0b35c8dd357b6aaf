"""C arrays of .tflite models for TFLite Micro (`xxd -i` style).

TFLite Micro has no sparse tensor support (no DENSIFY kernel, no sparse
kernels), so the C arrays hold the models with dense storage: float32_dense
and, with int8, int8_dense - the same weights as float32.tflite and
int8.tflite, pruned weights stored as zeros. It has no kernels for
dynamic-range (hybrid) or float16-weight models, so those get no C array.
"""
import os
import re

C_ARRAY_MODELS = ('float32_dense', 'int8_dense')


def c_array(content, symbol, header, comment=''):
  """(`.cc` text, `.h` text): `xxd -i`-style array, 16-byte aligned."""
  if not re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*', symbol):
    raise ValueError(f'not a C identifier: {symbol!r}')
  guard = re.sub(r'[^A-Za-z0-9]', '_', header).upper() + '_'
  body = '\n'.join('  ' + ', '.join(f'0x{b:02x}' for b in content[i:i + 12])
                   + ','
                   for i in range(0, len(content), 12))
  lead = ''.join(f'// {line}\n' for line in comment.splitlines())
  cc = (f'{lead}#include "{header}"\n\n'
        f'alignas(16) const unsigned char {symbol}[] = {{\n{body}\n}};\n'
        f'const unsigned int {symbol}_len = {len(content)};\n')
  h = (f'{lead}#ifndef {guard}\n#define {guard}\n\n'
       f'extern const unsigned char {symbol}[];\n'
       f'extern const unsigned int {symbol}_len;\n\n#endif  // {guard}\n')
  return cc, h


def write_c_arrays(out, tflite, input_shape):
  """Writes `<stem>.cc/.h` into `out` for the C_ARRAY_MODELS in `tflite`
  ({stem: bytes}); returns their report entries."""
  entries = []
  for stem in C_ARRAY_MODELS:
    if stem not in tflite:
      continue
    symbol = 'g_' + re.sub(r'\W', '_', stem) + '_model'
    comment = (f'{stem}.tflite ({len(tflite[stem])} bytes) as a C array for '
               'TFLite Micro; written by tf_tickets.export.\n'
               'Input: float32 raw pixels 0..255, shape (1, '
               + ', '.join(str(d) for d in input_shape)
               + '); output: float32 logits.\n'
               'Dense storage (pruned weights stored as zeros): TFLite Micro '
               'has no sparse tensor\nsupport, so the C array is written '
               'from the dense-storage model, not from\n'
               f'{stem.replace("_dense", "")}.tflite.')
    cc, h = c_array(tflite[stem], symbol, stem + '.h', comment)
    with open(os.path.join(out, stem + '.cc'), 'w') as f:
      f.write(cc)
    with open(os.path.join(out, stem + '.h'), 'w') as f:
      f.write(h)
    entries.append(dict(name=stem + '.cc', kind='c_array',
                        embeds=stem + '.tflite', symbol=symbol,
                        bytes=len(cc.encode()),
                        array_bytes=len(tflite[stem])))
  return entries
