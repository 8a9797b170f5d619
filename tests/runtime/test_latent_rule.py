"""The language-neutral latent rule (runtime/latent_rule.py, DESIGN.md "Latent rule") and the contract's choice of
rule: new models record splitmix64-ppnd7-v1, models without the key keep numpy's PCG64 rule and sample exactly as
before. Torch-free; the JavaScript twin is checked against these functions in tests/web/test_node.py."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import onnx
import pytest

from edgegan.runtime import Generator
from edgegan.runtime.contract import (
    KEY_LATENT_RULE,
    LATENT_RULE,
    LATENT_RULE_NUMPY,
    ContractError,
    draw_latents,
)
from edgegan.runtime.errors import GeneratorInputError
from edgegan.runtime.latent_rule import RULE, rule_normals, rule_truncated
from edgegan.runtime.latents import slerp, truncated_latents

# Test vectors of the specification (float32 bit patterns): any implementation must give exactly these.
VECTORS = [
    (0, 0, 2, 3, [[3208867705, 3213559426, 1057812141], [3216210760, 3211173042, 1041955272]]),
    (42, 7, 8, 4, [[1050247985, 3222946817, 1057945484, 3215528902]]),
]


@pytest.mark.parametrize("seed, start, stop, nz, bits", VECTORS)
def test_rule_matches_its_test_vectors(seed, start, stop, nz, bits):
    assert rule_normals(seed, start, stop, nz).view(np.uint32).tolist() == bits


def test_rows_depend_on_seed_and_image_index_only():
    whole = rule_normals(7, 0, 40, 9)
    assert np.array_equal(rule_normals(7, 13, 29, 9), whole[13:29])  # any slice or batch: the same rows
    assert np.array_equal(rule_normals(7, 0, 40, 5), whole[:, :5])  # entry e does not depend on nz
    assert not np.array_equal(rule_normals(8, 0, 40, 9), whole)
    assert np.array_equal(draw_latents(40, 9, 7), whole)
    assert draw_latents(3, 4, None).shape == (3, 4)  # fresh entropy still draws


def test_rule_is_standard_normal():
    z = rule_normals(1, 0, 4000, 100).astype(np.float64)  # 400k draws
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    for k in (1.0, 2.0, 3.0):
        want = 2 * (1 - NormalDist().cdf(k))
        assert abs((np.abs(z) > k).mean() - want) < 4 * np.sqrt(want / z.size) + 1e-4, k
    assert np.abs(z).max() < 5.5  # p >= 2**-25: the stated bound


@pytest.mark.parametrize("t", [0.05, 0.5, 2.0])
def test_truncation_redraws_only_outside_entries(t):
    plain = rule_normals(3, 0, 50, 16)
    z = rule_truncated(3, 0, 50, 16, t)
    inside = np.abs(plain) <= np.float32(t)
    assert np.abs(z).max() <= np.float32(t)
    assert np.array_equal(z[inside], plain[inside]) and (z[~inside] != plain[~inside]).all()
    assert np.array_equal(rule_truncated(3, 20, 35, 16, t), z[20:35])
    assert np.array_equal(truncated_latents(50, 16, 3, t), z)


def test_seed_outside_the_rule_range_is_refused():
    with pytest.raises(GeneratorInputError, match=r"2\*\*64"):
        rule_normals(2**64, 0, 1, 4)
    assert rule_normals(2**64 - 1, 0, 1, 4).shape == (1, 4)


def test_new_models_record_and_use_the_rule(make_model):
    path = make_model("rule/generator.onnx", nz=8, num_classes=3)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta[KEY_LATENT_RULE] == RULE == LATENT_RULE
    g = Generator(path, batch_size=3)
    assert g.contract.latent_rule == RULE
    np.testing.assert_array_equal(g.sample(7, seed=11, labels=2), g.generate(rule_normals(11, 0, 7, 8), 2))
    np.testing.assert_array_equal(
        g.sample(7, seed=11, truncation=0.7), g.generate(rule_truncated(11, 0, 7, 8, 0.7), np.arange(7) % 3)
    )
    a, b = rule_normals(4, 0, 1, 8)[0], rule_normals(9, 0, 1, 8)[0]
    np.testing.assert_array_equal(g.interpolate(4, 9, 5), g.generate(slerp(a, b, 5), 0))
    assert np.array_equal(g(5, seed=2).latents, rule_normals(2, 0, 5, 8))


def test_models_exported_before_the_rule_sample_exactly_as_before(make_model):
    """No edgegan.latent_rule key: numpy's default_rng(seed) stream, batch by batch, as every earlier release did."""
    path = make_model("legacy/generator.onnx", nz=8, metadata={KEY_LATENT_RULE: None})
    g = Generator(path, batch_size=4)
    assert g.contract.latent_rule == LATENT_RULE_NUMPY
    old = np.random.default_rng(5).standard_normal((10, 8), dtype=np.float32)  # the rule before this change
    np.testing.assert_array_equal(g.sample(10, seed=5), g.generate(old))
    np.testing.assert_array_equal(g(10, seed=5).latents, old)
    np.testing.assert_array_equal(draw_latents(10, 8, 5, LATENT_RULE_NUMPY), old)
    rng = np.random.default_rng(6)
    z = rng.standard_normal((6, 8), dtype=np.float32)
    while (np.abs(z) > np.float32(0.5)).any():
        outside = np.abs(z) > np.float32(0.5)
        z[outside] = rng.standard_normal(int(outside.sum()), dtype=np.float32)
    np.testing.assert_array_equal(g.sample(6, seed=6, truncation=0.5), g.generate(z))
    a, b = (np.random.default_rng(s).standard_normal((1, 8), dtype=np.float32)[0] for s in (1, 2))
    np.testing.assert_array_equal(g.interpolate(1, 2, 4), g.generate(slerp(a, b, 4)))


def test_unknown_rule_is_a_clear_contract_error(make_model):
    path = make_model("future/generator.onnx", metadata={KEY_LATENT_RULE: "splitmix64-ppnd7-v9"})
    with pytest.raises(ContractError, match="unknown latent rule 'splitmix64-ppnd7-v9'"):
        Generator(path)
