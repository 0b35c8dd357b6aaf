"""The one exact top-k of tf_tickets, on numpy arrays.

Every selection of entries by score (random masks, IMP, RigL/SET drop and
grow, GMP, SNIP) goes through `select`, so counts are exact and ties are
broken the same way (by flat index) everywhere and on every machine.
"""
import numpy as np


def select(scores, candidates, count, largest=False):
  """Flat indices of the `count` candidates with the smallest (or largest)
  scores: THE top-k of tf_tickets.

  Exact: returns min(count, #candidates) indices. Ties are broken by flat
  index (lowest first); NaN scores rank last. O(n) (a partition, no sort).
  """
  idx = np.flatnonzero(candidates)
  if count <= 0:
    return idx[:0]
  if count >= idx.size:
    return idx
  s = scores[idx]  # a copy, changed in place below
  if largest:
    np.negative(s, out=s)
  nan = np.isnan(s)
  if nan.any():
    s[nan] = np.inf
  kth = np.partition(s, count - 1)[count - 1]
  below = idx[s < kth]
  ties = idx[s == kth]
  return np.concatenate([below, ties[:count - below.size]])


def drop_lowest(mask, scores, count):
  """Removes the `count` active entries of the flat boolean `mask` with the
  smallest `scores` (in place); returns their flat indices."""
  drop = select(scores, mask, count)
  mask[drop] = False
  return drop
