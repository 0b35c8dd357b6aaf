"""Per-layer sparsities for sparse training and pruning.

Pure functions (numpy and math only, no TensorFlow). `shapes` maps a layer
name to its kernel shape; every function returns a dict with the same keys,
mapping to a sparsity in [0, 1] (the fraction of weights that are zero).

Distributions
-------------
* ``uniform``: every layer gets the same sparsity ``s``.
* ``er`` (Erdos-Renyi, Mocanu et al. 2018, "Scalable training of artificial
  neural networks with adaptive sparse connectivity ..."): with
  ``n_in, n_out = shape[-2], shape[-1]``::

      raw_l = ((n_in + n_out) / (n_in * n_out)) ** power_scale

* ``erk`` (Erdos-Renyi-Kernel, Evci et al. 2020, "Rigging the Lottery: Making
  All Tickets Winners"), over the whole kernel shape ``(d_1, ..., d_k)``::

      raw_l = (sum_i d_i / prod_i d_i) ** power_scale

  ``power_scale=1`` is ERK proper; ``power_scale=0`` gives ``uniform``.

Budget rule (ER and ERK)
------------------------
Layers named in ``custom`` keep their given sparsity and are left out of the
budget. Over the remaining layers ``L`` (``n_l = prod(shape_l)``) the
densities are ``d_l = eps * raw_l`` with ``eps`` chosen so that::

    sum_{l in L} d_l * n_l == (1 - s) * sum_{l in L} n_l

If some ``d_l`` would exceed 1, those layers are made dense (sparsity 0) and
``eps`` is solved again over the rest, with their non-zeros taken out of the
budget; this repeats until no density exceeds 1, so the total number of
non-zeros stays ``(1 - s) * sum n_l``. (Raising eps can only push more layers
over 1, so every layer found over 1 can be made dense at once.)
"""
import math

import numpy as np

from tf_tickets.errors import ConfigError, check_range

__all__ = ['DISTRIBUTIONS', 'compute', 'erdos_renyi', 'erk', 'get',
           'layer_size', 'nonzeros', 'uniform']


def layer_size(shape):
  """Number of weights in a kernel of the given shape (1 for shape `()`)."""
  return int(np.prod([int(d) for d in shape], dtype=np.int64))


def nonzeros(shapes, sparsities):
  """Expected non-zeros per layer: `round((1 - s) * n)` as ints."""
  out = {}
  for key, shape in shapes.items():
    if key not in sparsities:
      raise ConfigError(f'sparsities[{key!r}]', 'missing; every key of '
                        'shapes needs a sparsity')
    out[key] = int(round((1.0 - float(sparsities[key])) * layer_size(shape)))
  return out


def _check_shapes(shapes):
  checked = {}
  for key, shape in shapes.items():
    try:
      dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
      raise ConfigError(f'shapes[{key!r}]',
                        f'expected a tuple of ints, got {shape!r}') from None
    if any(d <= 0 for d in dims):
      raise ConfigError(f'shapes[{key!r}]',
                        f'dimensions must be positive, got {dims}')
    checked[key] = dims
  return checked


def _check_args(shapes, sparsity, custom):
  """Validates the common arguments; returns (shapes, sparsity, custom)."""
  shapes = _check_shapes(shapes)
  sparsity = check_range('sparsity', sparsity)
  custom = dict(custom or {})
  for key, value in custom.items():
    if key not in shapes:
      raise ConfigError(
          f'custom[{key!r}]', 'not a layer in shapes; valid: '
          + ', '.join(repr(k) for k in shapes))
    custom[key] = check_range(f'custom[{key!r}]', value)
  return shapes, sparsity, custom


def _check_power_scale(power_scale):
  return check_range('power_scale', power_scale, 0.0, math.inf)


def uniform(shapes, sparsity, custom=None):
  """Every layer gets `sparsity`, except the layers named in `custom`."""
  shapes, sparsity, custom = _check_args(shapes, sparsity, custom)
  return {k: custom.get(k, sparsity) for k in shapes}


def _solve(shapes, sparsity, custom, log_raw):
  """Scales raw densities (given as logs) to meet the budget; see module doc."""
  free = [k for k in shapes if k not in custom]
  size = {k: layer_size(shapes[k]) for k in free}
  budget = (1.0 - sparsity) * math.fsum(size.values())
  density = {}
  dense = set()
  while True:
    rest = [k for k in free if k not in dense]
    if not rest:
      break
    remaining = budget - math.fsum(size[k] for k in dense)
    if remaining <= 0.0:  # only by rounding: everything already dense
      for k in rest:
        density[k] = 1.0
      break
    # Normalise over `rest` so the largest raw density is 1 (no overflow).
    top = max(log_raw[k] for k in rest)
    raw = {k: math.exp(log_raw[k] - top) for k in rest}
    eps = remaining / math.fsum(raw[k] * size[k] for k in rest)
    over = {k for k in rest if eps * raw[k] > 1.0}
    if not over:
      for k in rest:
        density[k] = eps * raw[k]
      break
    dense |= over
  out = {}
  for k in shapes:
    if k in custom:
      out[k] = custom[k]
    elif k in dense:
      out[k] = 0.0
    else:
      out[k] = min(1.0, max(0.0, 1.0 - density[k]))
  return out


def _sum_over_prod(shapes, sparsity, custom, power_scale, dims, name,
                   min_ndim):
  """Density ~ (sum(d)/prod(d))**power_scale with d = dims(shape), solved
  against the budget; the common core of ER and ERK (computed in logs)."""
  shapes, sparsity, custom = _check_args(shapes, sparsity, custom)
  power_scale = _check_power_scale(power_scale)
  log_raw = {}
  for k, shape in shapes.items():
    if k in custom:
      continue
    if len(shape) < min_ndim:
      raise ConfigError(f'shapes[{k!r}]', f'{name} needs a kernel with at '
                        f'least {min_ndim} dim(s), got {shape}; give it a '
                        'sparsity in custom')
    d = dims(shape)
    log_raw[k] = (power_scale * (math.log(sum(d)) - math.fsum(
        math.log(x) for x in d)) if power_scale else 0.0)
  return _solve(shapes, sparsity, custom, log_raw)


def erdos_renyi(shapes, sparsity, custom=None, power_scale=1.0):
  """Erdos-Renyi: density ~ ((n_in + n_out) / (n_in * n_out))**power_scale.

  Only the last two dims of each kernel count (n_in=shape[-2],
  n_out=shape[-1]); a layer outside `custom` with fewer than 2 dims raises
  ConfigError.

  Difference from the reference: google-research/rigl's
  `get_sparsities_erdos_renyi` applies `erk_power_scale` only to ERK and
  ignores it for ER; here it applies to both (power_scale=1, the default,
  gives the same ER as the reference).
  """
  return _sum_over_prod(shapes, sparsity, custom, power_scale,
                        lambda shape: tuple(shape[-2:]), 'ER', 2)


def erk(shapes, sparsity, custom=None, power_scale=1.0):
  """Erdos-Renyi-Kernel: density ~ (sum(shape) / prod(shape))**power_scale.

  Uses the whole kernel shape (Evci et al. 2020). power_scale=0 is uniform.
  A layer outside `custom` with shape `()` raises ConfigError.
  """
  return _sum_over_prod(shapes, sparsity, custom, power_scale, tuple, 'ERK',
                        1)


DISTRIBUTIONS = {'uniform': uniform, 'er': erdos_renyi, 'erk': erk}


def get(name):
  """The distribution function called `name` (a key of DISTRIBUTIONS)."""
  if not isinstance(name, str) or name not in DISTRIBUTIONS:
    raise ConfigError(
        'sparse_training.distribution', f'unknown distribution {name!r}; '
        'valid: ' + ', '.join(repr(n) for n in DISTRIBUTIONS))
  return DISTRIBUTIONS[name]


def compute(name, shapes, sparsity, custom=None, power_scale=1.0):
  """Per-layer sparsities of distribution `name` ('uniform', 'er', 'erk').

  power_scale is checked for every name but only used by 'er' and 'erk'.
  """
  fn = get(name)
  power_scale = _check_power_scale(power_scale)
  if fn is uniform:
    return uniform(shapes, sparsity, custom)
  return fn(shapes, sparsity, custom, power_scale=power_scale)
