"""runtime.Generator on tiny onnx.helper generators: contract checks, sampling rules, labels, truncation,
interpolation, variants, IO binding, providers, thread safety and the TensorRT engine checks."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import onnxruntime as ort
import pytest

from edgegan.runtime import Generator
from edgegan.runtime.contract import KEY_FORMAT, KEY_NZ, KEY_OUTPUT, ContractError, draw_latents, to_uint8_nhwc
from edgegan.runtime.errors import EdgeganError
from edgegan.runtime.generator import GeneratorInputError, ModelFileError, slerp, truncated_latents
from edgegan.runtime.providers import ProviderError, session_options


def reference_float(path, z, labels=None):
    """The model's float output straight from onnxruntime (no Generator)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"z": z}
    if labels is not None:
        feeds["label"] = np.asarray(labels, np.int64)
    return session.run(["image"], feeds)[0]


# --- the contract --------------------------------------------------------------------------------------------
def test_properties_come_from_metadata(cond_model):
    g = Generator(cond_model)
    assert (g.nz, g.num_classes, g.image_shape) == (8, 3, (4, 5, 3))
    assert g.class_names == ["T-shirt", "Trouser", "Pullover"]
    assert (g.precision, g.output, g.conditional) == ("fp32", "float_nchw", True)
    assert g.providers[0] == "CPUExecutionProvider" and g.fallback is None
    assert g.contract.arch == "tiny" and "nz=8" in repr(g)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metadata": {KEY_NZ: None, KEY_OUTPUT: None}}, "missing edgegan.nz, edgegan.output"),
        ({"metadata": {KEY_FORMAT: "2"}}, "unknown edgegan contract version '2'"),
        ({"z_name": "x"}, "inputs are ['x']"),
        ({"metadata": {KEY_NZ: "9"}}, "expected tensor(float) [batch, 9]"),
        ({"metadata": {KEY_OUTPUT: "uint8_nhwc"}}, "output image is tensor(float)"),
        ({"batch": 2}, "fixed batch of 2"),
        ({"metadata": {"edgegan.num_classes": "3", "edgegan.class_names": "[]"}}, "takes ['z', 'label']"),
    ],
)
def test_refuses_models_off_contract(make_model, kwargs, message):
    path = make_model(f"bad/{abs(hash(str(kwargs)))}.onnx", **kwargs)
    with pytest.raises(ContractError) as info:
        Generator(path)
    assert message in str(info.value)


def test_refuses_a_model_without_any_metadata(make_model, tmp_path):
    import onnx

    model = onnx.load(str(make_model("meta/generator.onnx")))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "plain.onnx"))
    with pytest.raises(ContractError, match="not an edgegan generator: metadata is missing edgegan.format"):
        Generator(tmp_path / "plain.onnx")


def test_bad_paths(tmp_path, float_model):
    with pytest.raises(ModelFileError, match="not found"):
        Generator(tmp_path / "nope.onnx")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        Generator(tmp_path / "notes.txt")
    (tmp_path / "junk.onnx").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelFileError, match="cannot load"):
        Generator(tmp_path / "junk.onnx")
    with pytest.raises(ModelFileError, match="without generator.onnx"):
        Generator(tmp_path)
    assert Generator(float_model.parent).path == float_model  # a models/NAME folder finds generator.onnx


# --- sampling ------------------------------------------------------------------------------------------------
def test_sample_follows_the_latent_rule(float_model):
    g = Generator(float_model)
    images = g.sample(5, seed=3)
    assert images.dtype == np.uint8 and images.shape == (5, 4, 5, 1)
    expected = to_uint8_nhwc(reference_float(float_model, draw_latents(5, 8, 3)))
    np.testing.assert_array_equal(images, expected)
    assert len(np.unique(images)) > 20  # real pictures, not a constant
    np.testing.assert_array_equal(g.sample(5, seed=3), images)  # deterministic
    assert not np.array_equal(g.sample(5, seed=4), images)


@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_batch_size_does_not_change_images(cond_model, batch_size):
    whole = Generator(cond_model, batch_size=64).sample(7, seed=1)
    np.testing.assert_array_equal(Generator(cond_model, batch_size=batch_size).sample(7, seed=1), whole)


def test_generate_float_and_generate_agree(cond_model):
    g = Generator(cond_model)
    z = draw_latents(4, 8, 0)
    labels = [2, 0, 1, 1]
    floats = g.generate_float(z, labels)
    assert floats.dtype == np.float32 and floats.shape == (4, 3, 4, 5)
    np.testing.assert_array_equal(floats, reference_float(cond_model, z, labels))
    np.testing.assert_array_equal(g.generate(z, labels), to_uint8_nhwc(floats))
    np.testing.assert_array_equal(g.generate(z.astype(np.float64), labels), g.generate(z, labels))


def test_labels_default_index_name_and_broadcast(cond_model):
    g = Generator(cond_model)
    z = draw_latents(6, 8, 0)
    np.testing.assert_array_equal(g.sample(6, seed=0), g.generate(z, [0, 1, 2, 0, 1, 2]))  # arange(n) % K
    by_index = g.sample(6, seed=0, labels=1)
    np.testing.assert_array_equal(by_index, g.generate(z, [1] * 6))
    np.testing.assert_array_equal(g.sample(6, seed=0, labels="trouser"), by_index)  # case-insensitive name
    np.testing.assert_array_equal(g.sample(6, seed=0, labels=["TROUSER"]), by_index)
    np.testing.assert_array_equal(g.sample(6, seed=0, labels="1"), by_index)  # CLI passes strings
    mixed = g.sample(3, seed=0, labels=["pullover", 0, np.int64(1)])
    np.testing.assert_array_equal(mixed, g.generate(z[:3], [2, 0, 1]))
    assert not np.array_equal(g.sample(6, seed=0, labels=0), by_index)


@pytest.mark.parametrize(
    "labels, message",
    [
        (3, "out of range"),
        (-1, "out of range"),
        ("sneaker", "unknown class name 'sneaker'"),
        ([0, 1], "2 labels for 6 images"),
        (1.5, "int index or a class name"),
    ],
)
def test_bad_labels(cond_model, labels, message):
    with pytest.raises(GeneratorInputError, match=message):
        Generator(cond_model).sample(6, seed=0, labels=labels)


def test_labels_on_unconditional_model(float_model):
    with pytest.raises(GeneratorInputError, match="unconditional"):
        Generator(float_model).sample(2, labels=0)


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_bad_counts(float_model, n):
    with pytest.raises(GeneratorInputError, match="positive integer"):
        Generator(float_model).sample(n)


@pytest.mark.parametrize(
    "z, message",
    [
        (np.zeros((2, 7), np.float32), r"shape \[N, 8\]"),
        (np.zeros(8, np.float32), r"shape \[N, 8\]"),
        (np.zeros((0, 8), np.float32), r"shape \[N, 8\]"),
        (np.zeros((2, 8), np.int64), "floating point"),
        (np.full((2, 8), np.nan, np.float32), "NaN or Inf"),
        (np.full((1, 8), np.inf), "NaN or Inf"),
    ],
)
def test_bad_latents(float_model, z, message):
    with pytest.raises(GeneratorInputError, match=message):
        Generator(float_model).generate(z)


def test_bad_constructor_arguments(float_model):
    with pytest.raises(GeneratorInputError, match="batch size"):
        Generator(float_model, batch_size=0)
    with pytest.raises(GeneratorInputError, match="threads"):
        Generator(float_model, threads=0)
    with pytest.raises(ProviderError, match="unknown provider 'gpu'"):
        Generator(float_model, provider="gpu")
    with pytest.raises(GeneratorInputError, match="seed"):
        Generator(float_model).sample(1, seed=-1)


# --- truncation ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t", [0.05, 0.5, 1.0, 2.0])
def test_truncated_latents_are_bounded_and_keep_inside_entries(t):
    plain = draw_latents(32, 8, 5)
    z = truncated_latents(32, 8, 5, t)
    assert z.dtype == np.float32 and z.shape == (32, 8)
    assert np.abs(z).max() <= np.float32(t)
    inside = np.abs(plain) <= np.float32(t)
    np.testing.assert_array_equal(z[inside], plain[inside])  # only entries beyond t are redrawn
    assert (~inside).any() and not np.array_equal(z[~inside], plain[~inside])
    np.testing.assert_array_equal(truncated_latents(32, 8, 5, t), z)  # deterministic per seed


def test_sample_with_truncation(float_model):
    g = Generator(float_model)
    images = g.sample(4, seed=2, truncation=0.5)
    np.testing.assert_array_equal(images, g.generate(truncated_latents(4, 8, 2, 0.5)))
    np.testing.assert_array_equal(Generator(float_model, batch_size=1).sample(4, seed=2, truncation=0.5), images)
    for bad in (0.0, -1.0, float("nan"), float("inf"), 0.001):
        with pytest.raises(GeneratorInputError, match="truncation"):
            g.sample(4, seed=2, truncation=bad)


# --- interpolation -------------------------------------------------------------------------------------------
def test_slerp_endpoints_and_norm():
    a, b = draw_latents(1, 64, 0)[0], draw_latents(1, 64, 1)[0]
    z = slerp(a, b, 9)
    assert z.shape == (9, 64) and z.dtype == np.float32
    np.testing.assert_array_equal(z[0], a)
    np.testing.assert_array_equal(z[-1], b)
    # On the great circle the norm stays between the end norms (linear interpolation would dip in the middle).
    norms = np.linalg.norm(z, axis=1)
    assert norms.min() >= min(norms[0], norms[-1]) - 1e-4
    np.testing.assert_allclose(slerp(a, a, 3), np.stack([a] * 3))  # parallel latents: no division by zero


def test_interpolate_endpoints_equal_the_seeds_images(cond_model):
    g = Generator(cond_model)
    walk = g.interpolate(10, 11, steps=5)
    assert walk.shape == (5, 4, 5, 3)
    np.testing.assert_array_equal(walk[0], g.sample(1, seed=10)[0])
    np.testing.assert_array_equal(walk[-1], g.sample(1, seed=11)[0])
    walk2 = g.interpolate(10, 11, steps=5, label="pullover")
    np.testing.assert_array_equal(walk2[-1], g.sample(1, seed=11, labels=2)[0])
    with pytest.raises(GeneratorInputError, match="at least 2 steps"):
        g.interpolate(0, 1, steps=1)


# --- output forms and precision variants ----------------------------------------------------------------------
def test_uint8_output_model_matches_float_model(make_model, uint8_model):
    float_twin = make_model("uint8_twin/generator.onnx", num_classes=3)  # same weights (seed 0), float output
    g8, gf = Generator(uint8_model), Generator(float_twin)
    assert g8.output == "uint8_nhwc"
    np.testing.assert_array_equal(g8.sample(6, seed=0), gf.sample(6, seed=0))
    with pytest.raises(GeneratorInputError, match="uint8 pixels"):
        g8.generate_float(draw_latents(1, 8, 0))


@pytest.mark.parametrize("precision, tolerance", [("fp16", 2), ("int8", 3)])
def test_precision_variants(make_model, float_model, precision, tolerance):
    variant = make_model(f"variants/generator.{precision}.onnx", precision=precision)
    g = Generator(variant)
    assert g.precision == precision
    diff = np.abs(g.sample(16, seed=0).astype(int) - Generator(float_model).sample(16, seed=0).astype(int))
    assert diff.max() <= tolerance


def test_ort_format_variant(float_model, tmp_path):
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "generator.ort")
    options.add_session_config_entry("session.save_model_format", "ORT")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    ort.InferenceSession(str(float_model), options, providers=["CPUExecutionProvider"])
    g = Generator(tmp_path / "generator.ort")
    np.testing.assert_array_equal(g.sample(4, seed=0), Generator(float_model).sample(4, seed=0))


# --- providers, IO binding, session options ------------------------------------------------------------------
def test_io_binding_path_on_cpu(cond_model):
    bound = Generator(cond_model, io_binding=True, batch_size=2)
    assert bound._runner.io_binding and bound._runner.device == "cpu"
    np.testing.assert_array_equal(bound.sample(5, seed=4), Generator(cond_model).sample(5, seed=4))


def test_threads_and_session_options(float_model):
    reference = Generator(float_model).sample(3, seed=0)
    np.testing.assert_array_equal(Generator(float_model, threads=1).sample(3, seed=0), reference)
    options = session_options(graph_optimization="disable", spinning=False, memory_arena=False)
    np.testing.assert_array_equal(
        Generator(float_model, session_options=options, threads=2).sample(3, seed=0), reference
    )
    assert options.intra_op_num_threads == 2 and options.inter_op_num_threads == 1
    with pytest.raises(ProviderError, match="graph optimization"):
        session_options(graph_optimization="max")


def test_auto_provider_runs_the_best_available(float_model):
    g = Generator(float_model, provider="auto")
    expected = (
        "CUDAExecutionProvider" if "CUDAExecutionProvider" in ort.get_available_providers() else "CPUExecutionProvider"
    )
    assert g.providers[0] == expected and g.fallback is None


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_missing_provider_is_refused_or_recorded(float_model, provider):
    name = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}[provider]
    if name in ort.get_available_providers():
        pytest.skip(f"{name} is available here; the fallback path needs a machine without it")
    with pytest.raises(ProviderError, match=f"needs {name}"):
        Generator(float_model, provider=provider)
    with pytest.warns(RuntimeWarning, match=f"asked for {name} but onnxruntime runs CPUExecutionProvider"):
        g = Generator(float_model, provider=provider, allow_fallback=True)
    assert g.fallback == f"{name} -> CPUExecutionProvider"
    assert g.providers[0] == "CPUExecutionProvider"
    np.testing.assert_array_equal(g.sample(2, seed=0), Generator(float_model).sample(2, seed=0))


@pytest.mark.gpu
def test_cuda_matches_cpu(cond_model):
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("CUDAExecutionProvider is not available (onnxruntime-gpu and a GPU are needed)")
    g = Generator(cond_model, provider="cuda")
    assert g.providers[0] == "CUDAExecutionProvider" and g._runner.io_binding
    diff = np.abs(g.sample(32, seed=0).astype(int) - Generator(cond_model).sample(32, seed=0).astype(int))
    assert diff.max() <= 1


# --- sharing between threads ---------------------------------------------------------------------------------
@pytest.mark.parametrize("io_binding", [False, True])
def test_one_generator_from_8_threads(cond_model, io_binding):
    g = Generator(cond_model, batch_size=3, io_binding=io_binding)
    seeds = list(range(8))
    serial = {s: g.sample(10, seed=s, labels=s % 3) for s in seeds}
    results: dict[int, list[np.ndarray]] = {s: [] for s in seeds}
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(seed: int) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                results[seed].append(g.sample(10, seed=seed, labels=seed % 3))
        except BaseException as exc:  # surfaced below; a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for s in seeds:
        assert len(results[s]) == 5
        for images in results[s]:
            np.testing.assert_array_equal(images, serial[s])


# --- TensorRT engines -----------------------------------------------------------------------------------------
def _write_plan(folder, data: bytes, digest: str | None):
    plan = folder / "generator.plan"
    plan.write_bytes(data)
    if digest is not None:
        (folder / "generator.plan.sha256").write_text(digest)
    return plan


def test_engine_with_wrong_digest_is_refused(float_model, tmp_path):
    (tmp_path / "generator.onnx").write_bytes(float_model.read_bytes())
    plan = _write_plan(tmp_path, b"engine bytes", "0" * 64 + "  generator.plan\n")
    with pytest.raises(EdgeganError, match="does not match"):
        Generator(plan, provider="tensorrt")
    (tmp_path / "generator.plan.sha256").unlink()
    with pytest.raises(EdgeganError, match="sha256 is missing"):
        Generator(plan, provider="tensorrt")
    with pytest.raises(ProviderError, match="TensorRT engine"):
        Generator(plan, provider="cpu")


def test_engine_needs_its_onnx_and_tensorrt(float_model, tmp_path):
    data = b"engine bytes"
    plan = _write_plan(tmp_path, data, hashlib.sha256(data).hexdigest() + "  generator.plan\n")
    with pytest.raises(EdgeganError, match="generator.onnx is missing"):
        Generator(plan, provider="tensorrt")
    (tmp_path / "generator.onnx").write_bytes(float_model.read_bytes())
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(EdgeganError, match="needs the `tensorrt` Python package"):
            Generator(plan, provider="tensorrt")
    else:
        pytest.skip("tensorrt is installed: the missing-package message cannot be checked here")


def _build_engine(onnx_path, plan, max_batch: int = 16) -> None:
    """Build a TensorRT engine from a tiny generator.onnx with the tensorrt API (as export would)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_path.read_bytes()), [parser.get_error(i) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("z", (1, 8), (8, 8), (max_batch, 8))
    config.add_optimization_profile(profile)
    data = bytes(builder.build_serialized_network(network, config))
    plan.write_bytes(data)
    plan.with_name(plan.name + ".sha256").write_text(hashlib.sha256(data).hexdigest() + "  generator.plan\n")


@pytest.mark.gpu
def test_engine_runs_like_onnx(float_model, tmp_path):
    pytest.importorskip("tensorrt", reason="tensorrt is not installed: the .plan backend cannot run here")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu with CUDA is needed for the .plan backend's device memory")
    onnx_path = tmp_path / "generator.onnx"
    onnx_path.write_bytes(float_model.read_bytes())
    _build_engine(onnx_path, tmp_path / "generator.plan", max_batch=16)
    g = Generator(tmp_path / "generator.plan", provider="tensorrt")
    assert g.providers == ["TensorRT engine"] and g.batch_size == 16  # capped by the engine's profile
    diff = np.abs(g.sample(40, seed=0).astype(int) - Generator(float_model).sample(40, seed=0).astype(int))
    assert diff.max() <= 1
