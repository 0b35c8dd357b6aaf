"""Writes a small IDX (.gz) subset of an MNIST-format dataset.

Used to make the test fixture tests/data/fashion_mnist_small from the real
Fashion-MNIST that the Debian package dataset-fashion-mnist installs:

  python tests/data/make_fixture.py --src /usr/share/datasets/fashion-mnist \
      --dst tests/data/fashion_mnist_small --train 3000 --test 1000

Only the first N records of each file are kept (the IDX header is rewritten
with the new count). The gzip mtime is fixed to 0 so reruns give identical
bytes.
"""
import argparse
import gzip
import os
import struct
import sys

FILES = (('train-images-idx3-ubyte.gz', 'train'),
         ('train-labels-idx1-ubyte.gz', 'train'),
         ('t10k-images-idx3-ubyte.gz', 'test'),
         ('t10k-labels-idx1-ubyte.gz', 'test'))


def truncate_idx(raw, n):
  """Returns IDX bytes `raw` cut down to its first `n` records."""
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
    raise ValueError('not an unsigned-byte IDX file')
  ndim = raw[3]
  dims = list(struct.unpack('>' + 'I' * ndim, raw[4:4 + 4 * ndim]))
  if n > dims[0]:
    raise ValueError(f'asked for {n} records but the file has {dims[0]}')
  record = 1
  for d in dims[1:]:
    record *= d
  header_len = 4 + 4 * ndim
  dims[0] = n
  header = raw[:4] + struct.pack('>' + 'I' * ndim, *dims)
  return header + raw[header_len:header_len + n * record]


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--src', default='/usr/share/datasets/fashion-mnist',
                 help='directory with the four standard IDX .gz files')
  p.add_argument('--dst', required=True, help='output directory')
  p.add_argument('--train', type=int, default=3000,
                 help='number of training records to keep')
  p.add_argument('--test', type=int, default=1000,
                 help='number of test records to keep')
  args = p.parse_args(argv)
  os.makedirs(args.dst, exist_ok=True)
  for fname, split in FILES:
    n = args.train if split == 'train' else args.test
    src = os.path.join(args.src, fname)
    with gzip.open(src, 'rb') as f:
      raw = f.read()
    out = truncate_idx(raw, n)
    dst = os.path.join(args.dst, fname)
    with open(dst, 'wb') as f:
      with gzip.GzipFile(filename='', mode='wb', fileobj=f, mtime=0) as gz:
        gz.write(out)
    print(f'{dst}: {n} records, {os.path.getsize(dst)} bytes')
  return 0


if __name__ == '__main__':
  sys.exit(main())
