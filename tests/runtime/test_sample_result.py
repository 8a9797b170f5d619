"""Generator.__call__ -> SampleResult (the pipeline-shaped API), and the library's errors speaking its parameters
(labels=None, truncation=None, pixels='float', provider=, n, Generator.iter_sample), never the command's flags."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgegan.runtime import Generator
from edgegan.runtime.contract import draw_latents
from edgegan.runtime.errors import GeneratorInputError, MemoryLimitError
from edgegan.runtime.generator import SampleResult, truncated_latents
from edgegan.runtime.memory import MEMORY_HINT
from edgegan.runtime.providers import ProviderError


@pytest.mark.parametrize("truncation", [None, 0.7])
def test_result_holds_the_images_of_sample_and_what_made_them(cond_model, truncation):
    g = Generator(cond_model, batch_size=3)  # 7 images: batches of 3, 3, 1
    result = g(7, seed=5, labels="trouser", truncation=truncation)
    assert isinstance(result, SampleResult) and len(result) == 7
    assert (result.seed, result.truncation) == (5, truncation)
    np.testing.assert_array_equal(result.images, g.sample(7, seed=5, labels="trouser", truncation=truncation))
    assert result.images.dtype == np.uint8 and result.images.shape == (7, 4, 5, 3)
    want = draw_latents(7, 8, 5) if truncation is None else truncated_latents(7, 8, 5, truncation)
    np.testing.assert_array_equal(result.latents, want)
    assert result.latents.dtype == np.float32
    assert result.labels.dtype == np.int64 and result.labels.tolist() == [1] * 7
    np.testing.assert_array_equal(g.generate(result.latents, result.labels), result.images)  # remade from it


def test_result_default_labels_and_unconditional(cond_model, float_model):
    assert Generator(cond_model)(5, seed=0).labels.tolist() == [0, 1, 2, 0, 1]  # the contract's arange(n) % k
    plain = Generator(float_model)(2, seed=0)
    assert plain.labels is None and plain.latents.shape == (2, 8)


def test_result_without_a_seed_records_a_fresh_one_that_remakes_it(cond_model):
    g = Generator(cond_model)
    first, second = g(4), g(4)
    assert isinstance(first.seed, int) and 0 <= first.seed < 2**63 and first.seed != second.seed
    np.testing.assert_array_equal(g.sample(len(first), first.seed, first.labels, first.truncation), first.images)


def test_result_is_frozen_and_checks_arguments_like_sample(cond_model):
    g = Generator(cond_model)
    with pytest.raises(dataclasses.FrozenInstanceError):
        g(1, seed=0).seed = 1
    for kwargs in ({"n": 0}, {"n": 2, "seed": -1}, {"n": 2, "labels": [0, 1, 2]}, {"n": 2, "truncation": 0.0}):
        with pytest.raises(GeneratorInputError):
            g(**kwargs)


# --- errors in library words -----------------------------------------------------------------------------------
def _message(call) -> str:
    with pytest.raises(Exception) as info:
        call()
    return str(info.value)


def test_errors_name_parameters_not_command_flags(float_model, uint8_model, tmp_path, monkeypatch):
    plan = tmp_path / "generator.plan"
    plan.write_bytes(b"not an engine")
    messages = {
        "labels=None": _message(lambda: Generator(float_model).sample(2, labels=1)),
        "pixels='float'": _message(lambda: Generator(uint8_model).generate_float(draw_latents(1, 8, 0))),
        "provider='tensorrt'": _message(lambda: Generator(plan, provider="cpu")),
    }
    monkeypatch.setattr("edgegan.runtime.memory.available_memory", lambda: 1024)
    messages["Generator.iter_sample"] = _message(lambda: Generator(float_model).sample(10_000))
    messages["truncation=None"] = _message(lambda: Generator(float_model).iter_sample(10_000, truncation=0.5))
    for words, message in messages.items():
        assert words in message and " --" not in message and "(-" not in message, message
    assert "--" not in MEMORY_HINT


def test_memory_refusal_is_a_memory_limit_error(float_model, monkeypatch):
    monkeypatch.setattr("edgegan.runtime.memory.available_memory", lambda: 1024)
    with pytest.raises(MemoryLimitError, match="images and latents need"):
        Generator(float_model)(10_000, seed=0)
    with pytest.raises(ProviderError, match="unknown provider"):
        Generator(float_model, provider="gpu")
