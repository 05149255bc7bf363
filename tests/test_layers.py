"""Every supported layer, alone behind an input layer, against the NumPy reference.

Inputs are non-square with odd sizes so that H/W swaps and the odd pixel of
'same' padding show up. Each case builds MATLAB-format records, saves them
to a .mat file, converts it and compares the generated module's output with
tests/reference.py on seeded random data (float32, 1e-5 relative).
"""

from __future__ import annotations

from collections.abc import Callable

import matlab as M
import numpy as np
import pytest
import reference as R
import torch
from conftest import assert_parity, convert_records, import_generated

rng = np.random.default_rng


def w(*shape: int, seed: int = 0) -> np.ndarray:
    return rng(seed).standard_normal(shape).astype(np.float32) * 0.5


IMG = (7, 9, 3)  # H×W×C

Case = Callable[[], tuple[list, tuple[int, ...]]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def deco(fn: Case) -> Case:
        CASES[name] = fn
        return fn

    return deco


def img(*layers, size=IMG):
    return [M.image_input("in", size), *layers], size


# ---- convolution -----------------------------------------------------------

for name, kwargs in {
    "plain": {},
    "pad-symmetric": {"padding": (1, 1, 1, 1)},
    "pad-asymmetric": {"padding": (0, 1, 2, 1)},
    "stride-2x3": {"stride": (2, 3), "padding": (1, 0, 2, 1)},
    "same-s1": {"padding": "same"},
    "same-s2": {"padding": "same", "stride": (2, 2)},
    "same-s2x3-dil": {"padding": "same", "stride": (2, 3), "dilation": (2, 1)},
    "dilation": {"dilation": (2, 3), "padding": (2, 2, 3, 3)},
    "pad-value": {"padding": (1, 2, 0, 1), "padding_value": 1.5},
    "replicate": {"padding": (1, 2, 2, 1), "padding_value": "replicate"},
    "replicate-symmetric": {"padding": (1, 1, 2, 2), "padding_value": "replicate"},
    "reflect": {"padding": (2, 1, 1, 2), "padding_value": "symmetric-exclude-edge"},
    "symmetric-include-edge": {
        "padding": (2, 1, 0, 3),
        "padding_value": "symmetric-include-edge",
    },
    "same-s2-symmetric": {
        "padding": "same",
        "stride": (2, 2),
        "padding_value": "symmetric-include-edge",
    },
}.items():

    def make(kwargs=kwargs, kernel=(3, 5) if "dil" not in name else (3, 3)):
        return img(M.conv2d("conv", w(*kernel, 3, 4), w(4, seed=1), **kwargs))

    case(f"conv2d-{name}")(make)


@case("conv2d-even-kernel-same")
def _():
    return img(M.conv2d("conv", w(2, 4, 3, 5), w(5, seed=1), padding="same"))


@case("conv2d-one-filter")
def _():
    # MATLAB drops the trailing singleton: a 1-filter kernel is saved H×W×C.
    return img(
        M.conv2d(
            "conv", w(3, 3, 3, 1).reshape(3, 3, 3), w(1, seed=1), padding=(1, 1, 1, 1)
        )
    )


@case("conv2d-legacy-2017")
def _():
    return img(
        M.conv2d(
            "conv",
            w(5, 5, 3, 2),
            w(2, seed=1),
            stride=(3, 3),
            padding=(2, 2),
            legacy=True,
        )
    )


@case("conv2d-filter-groups")
def _():
    # AlexNet-era: NumFilters [3 3], each group sees half of the 4 channels.
    return img(
        M.conv2d("conv", w(3, 3, 2, 6), w(6, seed=1), num_filters=(3, 3)),
        size=(6, 5, 4),
    )


# ---- transposed convolution -------------------------------------------------

for name, kwargs in {
    "plain": {"stride": (2, 2)},
    "crop-symmetric": {"stride": (2, 2), "cropping": (1, 1, 1, 1)},
    "crop-asymmetric": {"stride": (2, 3), "cropping": (1, 0, 2, 1)},
    "same": {"stride": (2, 2), "cropping": "same"},
    "same-stride-3x2": {"stride": (3, 2), "cropping": "same"},
}.items():

    def make(kwargs=kwargs):
        return img(M.transposed_conv2d("up", w(3, 4, 5, 3), w(5, seed=1), **kwargs))

    case(f"transposed-conv2d-{name}")(make)


@case("transposed-conv2d-same-kernel-below-stride")
def _():
    return img(
        M.transposed_conv2d(
            "up", w(2, 2, 4, 3), w(4, seed=1), stride=(3, 3), cropping="same"
        )
    )


# ---- fully connected ---------------------------------------------------------


@case("fc-after-image")
def _():
    return img(M.fully_connected("fc", w(6, 7 * 9 * 3), w(6, seed=1)))


@case("fc-after-image-legacy-4d")
def _():
    return img(
        M.fully_connected("fc", w(7, 9, 3, 6), w(6, seed=1), input_size=(7, 9, 3))
    )


@case("fc-legacy-4d-chain")
def _():
    # Older files: even an FC after an FC stores a 1×1×C×O kernel.
    return img(
        M.fully_connected("fc1", w(7, 9, 3, 5), w(5, seed=1), input_size=(7, 9, 3)),
        M.fully_connected(
            "fc2", w(1, 1, 5, 4, seed=2), w(4, seed=3), input_size=(1, 1, 5)
        ),
    )


@case("fc-features")
def _():
    return [
        M.feature_input("in", 10),
        M.fully_connected("fc", w(4, 10), w(4, seed=1)),
    ], (10,)


@case("fc-one-output")
def _():
    return [
        M.feature_input("in", 10),
        M.fully_connected("fc", w(1, 10), w(1, seed=1)),
    ], (10,)


# ---- normalization -------------------------------------------------------------


def bn(name, c, eps=1e-5, seed=0):
    g = rng(seed)
    return M.batch_norm(
        name,
        g.standard_normal(c).astype(np.float32),
        g.uniform(0.5, 2, c).astype(np.float32),
        g.standard_normal(c).astype(np.float32),
        g.standard_normal(c).astype(np.float32),
        eps,
    )


@case("batchnorm-images")
def _():
    return img(bn("bn", 3))


@case("batchnorm-eps")
def _():
    return img(bn("bn", 3, eps=1e-3))


@case("batchnorm-features")
def _():
    return [
        M.feature_input("in", 6),
        M.fully_connected("fc", w(5, 6), w(5, seed=1)),
        bn("bn", 5),
    ], (6,)


for size in (5, 4, 2, 3):

    def make(size=size):
        return img(
            M.cross_channel_norm("lrn", size, alpha=0.5, beta=0.75, k=1.5),
            size=(5, 4, 7),
        )

    case(f"cross-channel-norm-{size}")(make)


# ---- activations, softmax, dropout -------------------------------------------------

for name, make_layer in {
    "relu": lambda: M.relu("act"),
    "leaky-relu": lambda: M.leaky_relu("act", 0.2),
    "leaky-relu-default": lambda: M.leaky_relu("act"),
    "clipped-relu": lambda: M.clipped_relu("act", 0.7),
    "clipped-relu-6": lambda: M.clipped_relu("act", 6.0),
    "elu": lambda: M.elu("act", 0.5),
    "tanh": lambda: M.tanh("act"),
    "sigmoid": lambda: M.sigmoid("act"),
    "swish": lambda: M.swish("act"),
    "gelu": lambda: M.gelu("act"),
    "gelu-tanh": lambda: M.gelu("act", "tanh"),
    "dropout": lambda: M.dropout("act", 0.3),
    "softmax-images": lambda: M.softmax("act"),
}.items():

    def make(make_layer=make_layer):
        return img(make_layer())

    case(name)(make)


@case("softmax-features")
def _():
    return [
        M.feature_input("in", 6),
        M.fully_connected("fc", w(5, 6), w(5, seed=1)),
        M.softmax("sm"),
    ], (6,)


# ---- pooling ---------------------------------------------------------------------

for name, make_layer in {
    "max-2x2": lambda: M.max_pool2d("pool", (2, 2), (2, 2)),
    "max-3x2-stride1": lambda: M.max_pool2d("pool", (3, 2), (1, 1)),
    "max-same-s2": lambda: M.max_pool2d("pool", (3, 3), (2, 2), "same"),
    "max-same-s1-even": lambda: M.max_pool2d("pool", (2, 2), (1, 1), "same"),
    "max-pad-asymmetric": lambda: M.max_pool2d("pool", (2, 2), (2, 2), (0, 1, 0, 1)),
    "max-pad-wide": lambda: M.max_pool2d("pool", (3, 3), (2, 2), (2, 2, 2, 2)),
    "max-legacy": lambda: M.max_pool2d("pool", (3, 3), (2, 2), (1, 1), legacy=True),
    "avg-2x2": lambda: M.avg_pool2d("pool", (2, 2), (2, 2)),
    "avg-pad-symmetric": lambda: M.avg_pool2d("pool", (3, 3), (1, 1), (1, 1, 1, 1)),
    "avg-pad-asymmetric": lambda: M.avg_pool2d("pool", (2, 3), (2, 1), (0, 1, 1, 0)),
    "avg-same-s2": lambda: M.avg_pool2d("pool", (3, 3), (2, 2), "same"),
    "avg-mean-symmetric": lambda: M.avg_pool2d(
        "pool", (3, 3), (1, 1), (1, 1, 1, 1), "mean"
    ),
    "avg-mean-asymmetric": lambda: M.avg_pool2d(
        "pool", (2, 3), (1, 2), (1, 0, 2, 1), "mean"
    ),
    "avg-mean-same-s2": lambda: M.avg_pool2d("pool", (3, 3), (2, 2), "same", "mean"),
    "global-avg": lambda: M.global_avg_pool2d("pool"),
    "global-max": lambda: M.global_max_pool2d("pool"),
}.items():

    def make(make_layer=make_layer):
        return img(make_layer())

    case(f"pool-{name}")(make)


# ---- input normalization -------------------------------------------------------------


def stats(*shape, seed=5, low=None):
    g = rng(seed)
    if low is not None:
        return g.uniform(low, low + 1, shape).astype(np.float32)
    return g.standard_normal(shape).astype(np.float32)


@case("input-zerocenter-channel")
def _():
    return [M.image_input("in", IMG, "zerocenter", AverageImage=stats(1, 1, 3))], IMG


@case("input-zerocenter-image")
def _():
    return [M.image_input("in", IMG, "zerocenter", AverageImage=stats(*IMG))], IMG


@case("input-zerocenter-scalar")
def _():
    return [M.image_input("in", IMG, "zerocenter", AverageImage=stats(1, 1))], IMG


@case("input-zscore-channel")
def _():
    return [
        M.image_input(
            "in", IMG, "zscore", Mean=stats(1, 1, 3), Std=stats(1, 1, 3, low=0.5)
        )
    ], IMG


@case("input-zscore-element")
def _():
    return [
        M.image_input("in", IMG, "zscore", Mean=stats(*IMG), Std=stats(*IMG, low=0.5))
    ], IMG


@case("input-rescale-zero-one")
def _():
    lo = stats(1, 1, 3, low=-2)
    return [
        M.image_input(
            "in", IMG, "rescale", Min=lo, Max=lo + 3, TargetMin=0.0, TargetMax=1.0
        )
    ], IMG


@case("input-rescale-symmetric")
def _():
    lo = stats(*IMG, low=-2)
    return [
        M.image_input(
            "in", IMG, "rescale", Min=lo, Max=lo + 2, TargetMin=-1.0, TargetMax=1.0
        )
    ], IMG


@case("input-features-zscore")
def _():
    return [
        M.feature_input("in", 6, "zscore", Mean=stats(6, 1), Std=stats(6, 1, low=1))
    ], (6,)


@case("input-features-zerocenter-double")
def _():
    # statistics may be saved as double
    return [
        M.feature_input(
            "in", 6, "zerocenter", AverageImage=stats(6, 1).astype(np.float64)
        )
    ], (6,)


# ---- output layers: identity at inference ----------------------------------------------


@case("classification")
def _():
    return img(M.softmax("sm"), M.classification("out", ["a", "b", "c"]))


@case("regression")
def _():
    return img(M.regression("out"))


@case("pixel-classification")
def _():
    return img(
        M.softmax("sm"), M.pixel_classification("out", ["x", "y", "z"], [1.0, 2.0, 0.5])
    )


# ---------------------------------------------------------------------------------------------


def matlab_input(size: tuple[int, ...], n: int = 2, seed: int = 42) -> np.ndarray:
    return rng(seed).standard_normal((*size, n)).astype(np.float32)


def to_torch_input(x: np.ndarray) -> np.ndarray:
    return x.transpose(3, 2, 0, 1) if x.ndim == 4 else x.T


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_matches_reference(name: str, tmp_path) -> None:
    layers, size = CASES[name]()
    _, out = convert_records(tmp_path, {"net": M.series(layers)})
    x = matlab_input(size)
    module = import_generated(out)
    model = module.load_model()
    with torch.no_grad():
        y = model(torch.from_numpy(np.ascontiguousarray(to_torch_input(x)))).numpy()
    expected = R.to_torch(R.run_layers(layers, x)[-1])
    assert_parity(y, expected, f"layer {name}")


@pytest.mark.parametrize(
    "name",
    [
        "conv2d-same-s2",
        "conv2d-same-s2x3-dil",
        "pool-max-same-s2",
        "pool-avg-mean-same-s2",
        "conv2d-same-s2-symmetric",
    ],
)
@pytest.mark.parametrize("size", [(8, 10, 3), (9, 6, 3)])
def test_same_padding_follows_the_input_size(
    name: str, size: tuple[int, ...], tmp_path
) -> None:
    """MATLAB recomputes 'same' padding from the actual input; so must we."""
    layers, _ = CASES[name]()
    _, out = convert_records(tmp_path, {"net": M.series(layers)})
    x = matlab_input(size)
    model = import_generated(out).load_model()
    with torch.no_grad():
        y = model(torch.from_numpy(np.ascontiguousarray(to_torch_input(x)))).numpy()
    assert_parity(y, R.to_torch(R.run_layers(layers, x)[-1]), f"{name} at {size}")


def test_legacy_average_image_on_another_size(tmp_path) -> None:
    """A full-size AverageImage: MATLAB subtracts its channel means elsewhere."""
    layers, _ = CASES["input-zerocenter-image"]()
    _, out = convert_records(tmp_path, {"net": M.series(layers)})
    x = matlab_input((4, 5, 3))
    model = import_generated(out).load_model()
    with torch.no_grad():
        y = model(torch.from_numpy(np.ascontiguousarray(to_torch_input(x)))).numpy()
    assert_parity(y, R.to_torch(R.run_layers(layers, x)[-1]), "zerocenter fallback")


def test_normalization_can_be_switched_off(tmp_path) -> None:
    layers, size = CASES["input-zscore-channel"]()
    _, out = convert_records(tmp_path, {"net": M.series(layers)})
    x = to_torch_input(matlab_input(size))
    model = import_generated(out).load_model(normalize_input=False)
    with torch.no_grad():
        y = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    np.testing.assert_array_equal(y, x)
