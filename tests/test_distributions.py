"""Tests of tf_tickets.distributions (uniform / ER / ERK per-layer sparsity)."""
import math

import pytest

from tf_tickets import distributions as dist
from tf_tickets.errors import ConfigError

SHAPES = {'a': (3, 3, 3, 16), 'b': (3, 3, 16, 32), 'c': (512, 10)}
# Sizes: a = 432, b = 4608, c = 5120; total 10160.
# A tiny first conv layer that ERK makes dense at high sparsity.
SATURATING = {'conv': (3, 3, 1, 4), 'fc': (4096, 256)}
# Sizes: conv = 36, fc = 1048576.


def _size(shape):
  return math.prod(shape)


def _nnz(shapes, sparsities, keys=None):
  keys = shapes if keys is None else keys
  return math.fsum((1.0 - sparsities[k]) * _size(shapes[k]) for k in keys)


def _assert_budget(shapes, sparsities, sparsity, keys=None):
  keys = list(shapes if keys is None else keys)
  want = (1.0 - sparsity) * sum(_size(shapes[k]) for k in keys)
  got = _nnz(shapes, sparsities, keys)
  assert got == pytest.approx(want, rel=1e-9, abs=0)


# ---------------------------------------------------------------- hand values


def test_erk_hand_computed():
  # raw_l * n_l = sum(shape): a 25, b 54, c 522 -> 601; budget 0.1 * 10160.
  eps = 1016.0 / 601.0
  want = {'a': 1.0 - eps * 25.0 / 432.0,
          'b': 1.0 - eps * 54.0 / 4608.0,
          'c': 1.0 - eps * 522.0 / 5120.0}
  got = dist.erk(SHAPES, 0.9)
  assert set(got) == set(SHAPES)
  for k in SHAPES:
    assert got[k] == pytest.approx(want[k], rel=1e-12), k
  # Spot check with numbers: a is the densest, b the sparsest.
  assert got['a'] == pytest.approx(0.902169, abs=1e-6)
  assert got['b'] == pytest.approx(0.980189, abs=1e-6)
  assert got['c'] == pytest.approx(0.827647, abs=1e-6)


def test_er_hand_computed():
  # ER: raw = (n_in + n_out) / (n_in * n_out) from the last two dims.
  raw = {'a': 19.0 / 48.0, 'b': 48.0 / 512.0, 'c': 522.0 / 5120.0}
  # raw_l * n_l: a 19/48*432 = 171, b 48/512*4608 = 432, c 522 -> 1125.
  eps = 1016.0 / 1125.0
  got = dist.erdos_renyi(SHAPES, 0.9)
  for k in SHAPES:
    assert got[k] == pytest.approx(1.0 - eps * raw[k], rel=1e-12), k


def test_erk_power_scale_half_hand_computed():
  raw = {'a': math.sqrt(25.0 / 432.0), 'b': math.sqrt(54.0 / 4608.0),
         'c': math.sqrt(522.0 / 5120.0)}
  eps = 1016.0 / (raw['a'] * 432 + raw['b'] * 4608 + raw['c'] * 5120)
  got = dist.erk(SHAPES, 0.9, power_scale=0.5)
  for k in SHAPES:
    assert got[k] == pytest.approx(1.0 - eps * raw[k], rel=1e-12), k


# ------------------------------------------------------------------- uniform


def test_uniform_with_custom():
  got = dist.uniform(SHAPES, 0.8, custom={'a': 0.0, 'c': 0.5})
  assert got == {'a': 0.0, 'b': 0.8, 'c': 0.5}
  assert dist.uniform(SHAPES, 0.3) == {'a': 0.3, 'b': 0.3, 'c': 0.3}


@pytest.mark.parametrize('power_scale', [0, 0.0])
def test_power_scale_zero_is_uniform(power_scale):
  for fn in (dist.erk, dist.erdos_renyi):
    got = fn(SHAPES, 0.75, power_scale=power_scale)
    for k in SHAPES:
      assert got[k] == pytest.approx(0.75, abs=1e-12), (fn.__name__, k)


# -------------------------------------------------------------------- budget


@pytest.mark.parametrize('name', ['uniform', 'er', 'erk'])
@pytest.mark.parametrize('sparsity', [0.0, 0.5, 0.9, 0.95, 0.99])
@pytest.mark.parametrize('shapes', [SHAPES, SATURATING])
def test_budget_met(name, sparsity, shapes):
  got = dist.compute(name, shapes, sparsity)
  assert set(got) == set(shapes)
  assert all(0.0 <= s <= 1.0 for s in got.values())
  _assert_budget(shapes, got, sparsity)


def test_saturating_layer_becomes_dense_and_budget_is_resolved():
  # First pass: eps = 0.05 * 1048612 / (11 + 4352) -> conv density ~3.7 > 1.
  first_eps = 0.05 * 1048612 / (11 + 4352)
  assert first_eps * 11 / 36 > 1.0
  got = dist.erk(SATURATING, 0.95)
  assert got['conv'] == 0.0
  # Re-solve: the fc layer takes whatever the dense conv layer leaves.
  fc_density = (0.05 * (36 + 1048576) - 36) / 1048576
  assert got['fc'] == pytest.approx(1.0 - fc_density, rel=1e-12)
  _assert_budget(SATURATING, got, 0.95)


def test_resolve_keeps_ratios_of_remaining_layers():
  shapes = {'conv': (3, 3, 1, 4), 'mid': (3, 3, 64, 64), 'fc': (4096, 256)}
  got = dist.erk(shapes, 0.95)
  assert got['conv'] == 0.0
  assert 0.0 < got['mid'] < 1.0 and 0.0 < got['fc'] < 1.0
  # Still ERK between the non-saturated layers: densities ~ sum/prod.
  ratio = (1 - got['mid']) / (1 - got['fc'])
  want = (134.0 / 36864.0) / (4352.0 / 1048576.0)
  assert ratio == pytest.approx(want, rel=1e-12)
  _assert_budget(shapes, got, 0.95)


def test_sparsity_zero_gives_all_dense():
  for name in dist.DISTRIBUTIONS:
    got = dist.compute(name, SHAPES, 0.0)
    assert got == {'a': 0.0, 'b': 0.0, 'c': 0.0}, name


def test_custom_layers_stay_out_of_budget():
  custom = {'c': 0.5}
  for fn in (dist.uniform, dist.erdos_renyi, dist.erk):
    got = fn(SHAPES, 0.9, custom=custom)
    assert got['c'] == 0.5
    _assert_budget(SHAPES, got, 0.9, keys=['a', 'b'])
  # ERK over a and b only: raw_l * n_l = 25 + 54, budget 0.1 * (432 + 4608).
  eps = 504.0 / 79.0
  got = dist.erk(SHAPES, 0.9, custom=custom)
  assert got['a'] == pytest.approx(1.0 - eps * 25.0 / 432.0, rel=1e-12)
  assert got['b'] == pytest.approx(1.0 - eps * 54.0 / 4608.0, rel=1e-12)


def test_all_layers_custom():
  got = dist.erk(SHAPES, 0.9, custom={'a': 0.0, 'b': 0.1, 'c': 0.2})
  assert got == {'a': 0.0, 'b': 0.1, 'c': 0.2}


def test_empty_shapes():
  for name in dist.DISTRIBUTIONS:
    assert dist.compute(name, {}, 0.5) == {}


# --------------------------------------------------------- ER vs ERK by shape


def test_er_uses_last_two_dims_only():
  shapes = {'conv': (3, 3, 64, 128), 'dense': (64, 128)}
  er = dist.erdos_renyi(shapes, 0.9)
  assert er['conv'] == pytest.approx(0.9, abs=1e-12)
  assert er['dense'] == pytest.approx(0.9, abs=1e-12)
  erk = dist.erk(shapes, 0.9)
  # ERK: conv raw = 198 / 73728, dense raw = 192 / 8192 -> conv much sparser.
  # eps = 0.1 * 81920 / (198 + 192); dense density ~0.49 (not saturated).
  assert erk['dense'] == pytest.approx(1 - 8192.0 / 390.0 * 192.0 / 8192.0,
                                       rel=1e-12)
  assert erk['conv'] > erk['dense'] + 0.1
  ratio = (1 - erk['conv']) / (1 - erk['dense'])
  assert ratio == pytest.approx((198.0 / 73728.0) / (192.0 / 8192.0),
                                rel=1e-12)


def test_erk_one_dim_shape_allowed_er_rejects():
  shapes = {'k': (64, 64), 'bias': (64,)}
  got = dist.erk(shapes, 0.5)
  _assert_budget(shapes, got, 0.5)
  with pytest.raises(ConfigError, match="'bias'"):
    dist.erdos_renyi(shapes, 0.5)
  # Fine when the 1-D layer's sparsity is given.
  got = dist.erdos_renyi(shapes, 0.5, custom={'bias': 0.0})
  assert got['bias'] == 0.0 and got['k'] == pytest.approx(0.5)


def test_large_power_scale_no_overflow():
  got = dist.erk(SHAPES, 0.9, power_scale=400.0)
  assert all(0.0 <= s <= 1.0 for s in got.values())
  _assert_budget(SHAPES, got, 0.9)


# --------------------------------------------------------- nonzeros and size


def test_layer_size_and_nonzeros():
  assert dist.layer_size((3, 3, 3, 16)) == 432
  assert dist.layer_size((512, 10)) == 5120
  assert dist.layer_size((7,)) == 7
  nnz = dist.nonzeros(SHAPES, {'a': 0.5, 'b': 0.9, 'c': 0.0})
  assert nnz == {'a': 216, 'b': 461, 'c': 5120}
  assert all(isinstance(v, int) for v in nnz.values())


# -------------------------------------------------------------------- errors


@pytest.mark.parametrize('name', ['uniform', 'er', 'erk'])
@pytest.mark.parametrize('bad', [-0.1, 1.0, 1.5, float('nan'), 'x'])
def test_bad_sparsity_raises(name, bad):
  with pytest.raises(ValueError, match='sparsity'):
    dist.compute(name, SHAPES, bad)
  with pytest.raises(ConfigError):
    dist.DISTRIBUTIONS[name](SHAPES, bad)


def test_unknown_distribution():
  with pytest.raises(ConfigError, match='sparse_training.distribution') as e:
    dist.compute('erdos', SHAPES, 0.5)
  assert e.value.setting == 'sparse_training.distribution'
  for valid in ('uniform', 'er', 'erk'):
    assert repr(valid) in str(e.value)
  with pytest.raises(ConfigError, match='sparse_training.distribution'):
    dist.get('ERK')
  assert dist.get('erk') is dist.erk


@pytest.mark.parametrize('name', ['uniform', 'er', 'erk'])
def test_bad_custom_key(name):
  with pytest.raises(ConfigError, match="custom\\['d'\\]") as e:
    dist.compute(name, SHAPES, 0.5, custom={'d': 0.1})
  for valid in SHAPES:
    assert repr(valid) in str(e.value)


@pytest.mark.parametrize('bad', [-0.1, 1.0, 1.5])
def test_bad_custom_value(bad):
  with pytest.raises(ConfigError, match="custom\\['a'\\]"):
    dist.erk(SHAPES, 0.5, custom={'a': bad})


def test_bad_power_scale():
  with pytest.raises(ConfigError, match='power_scale'):
    dist.erk(SHAPES, 0.5, power_scale=-1.0)
  with pytest.raises(ConfigError, match='power_scale'):
    dist.compute('uniform', SHAPES, 0.5, power_scale=-1.0)


def test_bad_shape():
  with pytest.raises(ConfigError, match="'z'"):
    dist.erk({'z': (0, 3)}, 0.5)


def test_module_does_not_import_tensorflow():
  with open(dist.__file__, encoding='utf-8') as f:
    src = f.read()
  assert 'import tensorflow' not in src
