"""Every supported layer, alone behind an input layer, against the NumPy reference.

Inputs are non-square with odd sizes so that H/W swaps and the odd pixel of
'same' padding show up. Each case builds MATLAB-format records, saves them
to a .mat file, converts it and compares the generated module's output with
tests/reference.py on seeded random data (float32, 1e-5 relative).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import matlab as M
import numpy as np
import pytest
import torch
from conftest import assert_parity, convert_records, import_generated

from codegen import reference as R
from codegen.matfile import MatObject

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


for _cls in ("DicePixelClassificationLayer", "FocalLossLayer", "YOLOv2OutputLayer"):

    def make(cls=_cls):  # loss not translated: identity at inference
        return img(M.layer(cls, "out", Classes=["a", "b", "c"]))

    case(f"untranslated-loss-{_cls}")(make)


for _cls in ("RPNClassificationLayer", "BoundingBoxRegressionOutputLayer"):

    def make(cls=_cls):  # Faster R-CNN heads, saved unnamed
        layer = MatObject(
            f"vision.cnn.layer.{cls}", {"PrivateLayer": {"Name": ""}}, True
        )
        return img(M.conv2d("conv", w(1, 1, 3, 4), w(4, seed=1)), layer)

    case(f"untranslated-loss-{_cls}")(make)


# ---- 3-D, grouped, resize, norms, flatten, function, detection (single input) ----------

VOL = (5, 6, 4, 2)  # H×W×D×C


def vol(*layers, size=VOL):
    return [M.image3d_input("in", size), *layers], size


@case("conv3d-same")
def _():
    return vol(M.conv3d("conv", w(3, 2, 3, 2, 4), w(4, seed=1), padding="same"))


@case("conv3d-asymmetric-stride")
def _():
    # PaddingSize [t l f; b r k] as MATLAB saves it (1×6, column-major)
    return vol(
        M.conv3d(
            "conv",
            w(2, 3, 2, 2, 3),
            w(3, seed=1),
            stride=(2, 1, 2),
            padding=(1, 0, 2, 1, 0, 1),
        )
    )


@case("transposed-conv3d")
def _():
    return vol(
        M.transposed_conv3d(
            "up",
            w(2, 3, 2, 3, 2),
            w(3, seed=1),
            stride=(2, 2, 1),
            cropping=(1, 0, 0, 1, 0, 0),
        )
    )


@case("transposed-conv3d-same")
def _():
    return vol(
        M.transposed_conv3d(
            "up", w(3, 3, 3, 3, 2), w(3, seed=1), stride=(2, 2, 2), cropping="same"
        )
    )


for name, make_layer in {
    "max3d": lambda: M.pool3d("Max", "pool", (2, 2, 2), (2, 2, 1)),
    "max3d-same": lambda: M.pool3d("Max", "pool", (3, 2, 2), (2, 2, 2), "same"),
    "avg3d": lambda: M.pool3d(
        "Average", "pool", (2, 3, 2), (1, 2, 2), (1, 1, 0, 1, 0, 0)
    ),
    "global-avg3d": lambda: M.global_pool3d("Average", "pool"),
    "global-max3d": lambda: M.global_pool3d("Max", "pool"),
}.items():

    def make(make_layer=make_layer):
        return vol(make_layer())

    case(f"pool-{name}")(make)


@case("input-3d-zscore")
def _():
    return [
        M.image3d_input(
            "in", VOL, "zscore", Mean=stats(1, 1, 1, 2), Std=stats(1, 1, 1, 2, low=0.5)
        )
    ], VOL


@case("grouped-conv2d")
def _():
    return img(
        M.grouped_conv2d("gconv", w(3, 2, 2, 3, 2), w(6, seed=1), padding=(1, 1, 0, 1)),
        size=(7, 9, 4),
    )


@case("grouped-conv2d-depthwise")
def _():
    return img(
        M.grouped_conv2d(
            "dw",
            w(3, 3, 1, 2, 3),
            w(6, seed=1),
            stride=(2, 2),
            padding="same",
            channel_wise=True,
        )
    )


for name, kwargs in {
    "nearest-scale": {"scale": 2},
    "nearest-size": {"output_size": (11, 5)},
    "nearest-nan": {"output_size": (14, float("nan"))},
    "bilinear-scale": {"scale": (1.5, 2), "method": "bilinear"},
    "bilinear-down": {"output_size": (4, 5), "method": "bilinear"},
    "nearest-floor-half-pixel": {"scale": 2.5, "rounding": "floor"},
    "nearest-asymmetric-round": {"output_size": (10, 13), "transform": "asymmetric"},
    "nearest-asymmetric-floor": {
        "scale": 3,
        "transform": "asymmetric",
        "rounding": "floor",
    },
    "nearest-onnx10-up": {"scale": 1.7, "rounding": "onnx-10"},
    "nearest-onnx10-down": {"output_size": (4, 4), "rounding": "onnx-10"},
    "bilinear-asymmetric": {
        "scale": 2,
        "method": "bilinear",
        "transform": "asymmetric",
    },
}.items():

    def make(kwargs=kwargs):
        return img(M.resize("resize", **kwargs))

    case(f"resize2d-{name}")(make)


@case("resize3d-trilinear")
def _():
    return vol(M.resize("resize", nd=3, scale=(2, 1.5, 2), method="trilinear"))


@case("resize3d-nearest")
def _():
    return vol(M.resize("resize", nd=3, scale=2))


for name, make_layer in {
    "layernorm-images-auto": lambda: M.layer_norm("ln", 3, "auto"),
    "layernorm-images-legacy": lambda: M.layer_norm("ln", 3),
    "layernorm-images-channel-only": lambda: M.layer_norm("ln", 3, "channel-only"),
    "groupnorm": lambda: M.group_norm("gn", 4, 2),
    "groupnorm-channel-wise": lambda: M.group_norm("gn", 4, "channel-wise"),
    "groupnorm-all-channels": lambda: M.group_norm("gn", 4, "all-channels"),
    "instancenorm": lambda: M.instance_norm("in_norm", 4),
}.items():

    def make(make_layer=make_layer, name=name):
        return img(make_layer(), size=(5, 6, 3) if "layernorm" in name else (5, 6, 4))

    case(name)(make)


@case("layernorm-features")
def _():
    return [M.feature_input("in", 6), M.layer_norm("ln", 6, "auto")], (6,)


@case("flatten-then-fc")
def _():
    return img(
        M.flatten("flat"), M.fully_connected("fc", w(4, 7 * 9 * 3), w(4, seed=1))
    )


@case("flatten-3d")
def _():
    return vol(M.flatten("flat"))


@case("yolov2-transform")
def _():
    return img(M.yolov2_transform("yolo", 2), size=(4, 5, 16))


for name, text in {
    "scale": "@(x).001*x",
    "expression": "@(X) max(X, 0) + 0.5*exp(-abs(X)).^2 - sigmoid(X)./2",
    "relu-tanh": "@(z) relu(tanh(z)) - -1.5",
}.items():

    def make(text=text):
        return img(M.function_layer("fn", text))

    case(f"function-{name}")(make)


# reductions over a MATLAB dimension (image-control-BC's soft normalisation)
for name, text in {
    "sum-channels": "@(W)W.^2./(sum(W.^2,3)+.01)",
    "mean-rows": "@(x) x - mean(x, 1)",
    "sum-singleton": "@(x) sum(x, 5) + x",
}.items():

    def make(text=text):
        return img(M.function_layer("fn", text))

    case(f"function-{name}")(make)


# matrix products with captured matrices on 'CB' data (latent-control-idea's
# soft-argmax, '@(W)[XFlat*W;YFlat*W]' after flatten + softmax)
@case("function-captured-soft-argmax")
def _():
    g = np.random.default_rng(5)
    grid = {"XFlat": g.uniform(-1, 1, (1, 189)), "YFlat": g.uniform(-1, 1, (1, 189))}
    return img(
        M.flatten("flat"),
        M.softmax("sm"),
        M.function_layer("fn", "@(W)[XFlat*W;YFlat*W]", captured=grid),
    )


@case("function-captured-mixed")
def _():
    g = np.random.default_rng(6)
    mats = {"A": g.standard_normal((3, 4)), "b": g.standard_normal((1, 4))}
    return [
        M.feature_input("in", 4),
        M.function_layer("fn", "@(x) [2*(A*x); x; exp(b*x)] - 1", captured=mats),
        M.fully_connected("fc", w(2, 8), w(2, seed=1)),
    ], (4,)


# ---- graph layers: several inputs -----------------------------------------------------------


class Graph(NamedTuple):
    layers: list
    pairs: list
    sizes: dict
    container: str = "dag"
    outputs: tuple = ()  # dlnetwork OutputNames


@case("addition-residual")
def _():
    layers = [
        M.image_input("in", IMG),
        M.conv2d("conv", w(3, 3, 3, 3), w(3, seed=1), padding="same"),
        M.relu("relu"),
        M.addition("add"),
        M.relu("out_relu"),
    ]
    pairs = [
        ("in", "conv"),
        ("conv", "relu"),
        ("relu", "add/in1"),
        ("in", "add/in2"),
        ("add", "out_relu"),
    ]
    return Graph(layers, pairs, {"in": IMG})


@case("in-place-relu-skipped-when-input-is-read-again")
def _():
    # bn feeds both the ReLU and the addition: the ReLU must not overwrite it.
    layers = [
        M.image_input("in", IMG),
        M.conv2d("conv", w(3, 3, 3, 4), w(4, seed=1), padding="same"),
        bn("bn", 4),
        M.relu("relu"),
        M.addition("add"),
        M.relu("relu_in"),
    ]
    pairs = [
        ("in", "conv"),
        ("conv", "bn"),
        ("bn", "relu"),
        ("bn", "add/in1"),
        ("relu", "add/in2"),
        ("in", "relu_in"),
    ]
    return Graph(layers, pairs, {"in": IMG})


@case("in-place-add-skipped-when-it-would-broadcast")
def _():
    # x holds the one-channel branch, which cannot hold the 4-channel sum.
    layers = [
        M.image_input("in", IMG),
        M.conv2d("wide", w(3, 3, 3, 4), w(4, seed=1), padding="same"),
        M.conv2d("narrow", w(1, 1, 3, 1, seed=2), w(1, seed=3)),
        M.addition("add"),
    ]
    pairs = [
        ("in", "wide"),
        ("in", "narrow"),
        ("wide", "add/in1"),
        ("narrow", "add/in2"),
    ]
    return Graph(layers, pairs, {"in": IMG})


@case("multiplication-three")
def _():
    layers = [
        M.image_input("in", IMG),
        M.sigmoid("s"),
        M.tanh("t"),
        M.multiplication("mul", 3),
    ]
    pairs = [
        ("in", "s"),
        ("in", "t"),
        ("s", "mul/in1"),
        ("t", "mul/in2"),
        ("in", "mul/in3"),
    ]
    return Graph(layers, pairs, {"in": IMG})


@case("depth-concatenation")
def _():
    layers = [
        M.image_input("in", IMG),
        M.conv2d("a", w(1, 1, 3, 2), w(2, seed=1)),
        M.conv2d("b", w(3, 3, 3, 5, seed=2), w(5, seed=3), padding="same"),
        M.depth_concatenation("cat"),
    ]
    pairs = [("in", "a"), ("in", "b"), ("a", "cat/in1"), ("b", "cat/in2")]
    return Graph(layers, pairs, {"in": IMG})


for dim in (1, 2, 3):

    def make(dim=dim):
        layers = [
            M.image_input("x1", IMG),
            M.image_input("x2", IMG),
            M.concatenation("cat", dim),
        ]
        pairs = [("x1", "cat/in1"), ("x2", "cat/in2")]
        return Graph(layers, pairs, {"x1": IMG, "x2": IMG})

    case(f"concatenation-dim{dim}")(make)


@case("concatenation-features-two-inputs")
def _():
    layers = [
        M.feature_input("f1", 4),
        M.feature_input("f2", 3),
        M.concatenation("cat", 1),
        M.fully_connected("fc", w(2, 7), w(2, seed=1)),
    ]
    pairs = [("f1", "cat/in1"), ("f2", "cat/in2"), ("cat", "fc")]
    return Graph(layers, pairs, {"f1": (4,), "f2": (3,)})


for name, loc in {"centre": "auto", "custom": (2, 3)}.items():

    def make(loc=loc):
        layers = [
            M.image_input("big", (9, 11, 2)),
            M.image_input("small", (4, 7, 1)),
            M.crop2d("crop", loc),
        ]
        pairs = [("big", "crop/in"), ("small", "crop/ref")]
        return Graph(layers, pairs, {"big": (9, 11, 2), "small": (4, 7, 1)})

    case(f"crop2d-{name}")(make)


@case("crop2d-odd-sizes")
def _():
    layers = [
        M.image_input("big", (10, 9, 2)),
        M.image_input("small", (3, 4, 1)),
        M.crop2d("crop"),
    ]
    return Graph(
        layers,
        [("big", "crop/in"), ("small", "crop/ref")],
        {"big": (10, 9, 2), "small": (3, 4, 1)},
    )


@case("resize2d-reference")
def _():
    layers = [
        M.image_input("x", (4, 5, 2)),
        M.image_input("ref", (9, 7, 1)),
        M.resize("resize", reference=True, method="bilinear"),
    ]
    return Graph(
        layers,
        [("x", "resize/in"), ("ref", "resize/ref")],
        {"x": (4, 5, 2), "ref": (9, 7, 1)},
    )


@case("max-unpooling")
def _():
    layers = [
        M.image_input("in", (8, 6, 3)),
        M.max_pool_unpooling("pool", (2, 2), (2, 2)),
        M.relu("relu"),
        M.max_unpool2d("unpool"),
    ]
    pairs = [
        ("in", "pool"),
        ("pool/out", "relu"),
        ("relu", "unpool/in"),
        ("pool/indices", "unpool/indices"),
        ("pool/size", "unpool/size"),
    ]
    return Graph(layers, pairs, {"in": (8, 6, 3)})


@case("function-two-inputs")
def _():
    layers = [
        M.image_input("a", IMG),
        M.image_input("b", IMG),
        M.function_layer("fn", "@(x, y) x.*y + 2*x", 2),
    ]
    return Graph(layers, [("a", "fn/in1"), ("b", "fn/in2")], {"a": IMG, "b": IMG})


@case("dlnetwork-input-layer")
def _():
    layers = [
        M.input_layer("in", (7, 9, 3, float("nan")), "SSCB"),
        M.conv2d("conv", w(3, 3, 3, 2), w(2, seed=1)),
    ]
    return Graph(layers, [("in", "conv")], {"in": IMG}, container="dlnetwork")


@case("layers-listed-out-of-order")
def _():
    # MATLAB's Layers order need not be topological (17 corpus edges point back).
    made = CASES["addition-residual"]()
    return Graph(list(reversed(made.layers)), made.pairs, made.sizes)


@case("lgraph-untrained-shapes-from-graph")
def _():
    layers = [M.image_input("in", IMG), M.relu("a"), M.tanh("b"), M.addition("add")]
    return Graph(
        layers,
        [("in", "a"), ("in", "b"), ("a", "add/in1"), ("b", "add/in2")],
        {"in": IMG},
        container="lgraph",
    )


# ---- sequences -------------------------------------------------------------------------------


def sq(*layers, channels=3):
    return [M.sequence_input("in", channels), *layers], seq(channels)


for name, kwargs in {
    "lstm": {},
    "lstm-last": {"last": True},
    "lstm-legacy-return-sequence": {"last": True, "legacy": True},
    "lstm-initial-state": {"h0": np.linspace(-1, 1, 5), "c0": np.linspace(1, -0.5, 5)},
    "lstm-softsign": {"state": "softsign"},
    "lstm-relu-hard-sigmoid": {"state": "relu", "gate": "hard-sigmoid"},
    "lstm-projected": {"projector": (2, 3)},
}.items():

    def make(kwargs=kwargs):
        cls = "LSTMProjected" if "projector" in kwargs else "LSTM"
        return sq(M.recurrent(cls, "rnn", 3, 5, **kwargs))

    case(f"seq-{name}")(make)


for name, kwargs in {
    "bilstm": {},
    "bilstm-last": {"last": True},
    "bilstm-initial-state-last": {
        "last": True,
        "h0": np.linspace(-1, 1, 8),
        "c0": np.linspace(0.5, -1, 8),
    },
    "bilstm-hard-sigmoid": {"gate": "hard-sigmoid", "last": True},
}.items():

    def make(kwargs=kwargs):
        return sq(M.recurrent("BiLSTM", "rnn", 3, 4, **kwargs))

    case(f"seq-{name}")(make)


for mode in (
    "after-multiplication",
    "before-multiplication",
    "recurrent-bias-after-multiplication",
):

    def make(mode=mode):
        return sq(M.recurrent("GRU", "rnn", 3, 4, reset=mode))

    case(f"seq-gru-{mode}")(make)


@case("seq-bigru-last")
def _():
    return sq(
        M.recurrent("BiGRU", "rnn", 3, 4, reset="after-multiplication", last=True)
    )


for name, kwargs in {
    "gru-last-initial": {
        "last": True,
        "h0": np.linspace(-0.5, 1, 4),
        "reset": "after-multiplication",
    },
    "gru-softsign-hard": {
        "state": "softsign",
        "gate": "hard-sigmoid",
        "reset": "after-multiplication",
    },
    "gru-projected": {"projector": (2, 2), "reset": "after-multiplication"},
}.items():

    def make(kwargs=kwargs):
        cls = "GRUProjected" if "projector" in kwargs else "GRU"
        return sq(M.recurrent(cls, "rnn", 3, 4, **kwargs))

    case(f"seq-{name}")(make)


@case("seq-stacked-fc-softmax")
def _():
    return sq(
        M.recurrent("LSTM", "lstm1", 3, 6, seed=1),
        M.dropout("drop", 0.2),
        M.recurrent("BiLSTM", "lstm2", 6, 4, seed=2, last=True),
        M.fully_connected("fc", w(3, 8), w(3, seed=1)),
        M.softmax("sm"),
        M.classification("out", ["a", "b", "c"]),
    )


@case("seq-to-seq-fc-softmax")
def _():
    return sq(
        M.recurrent("GRU", "gru", 3, 5, reset="after-multiplication"),
        M.fully_connected("fc", w(2, 5), w(2, seed=1)),
        M.softmax("sm"),
    )


@case("seq-input-zscore")
def _():
    return [
        M.sequence_input("in", 4, "zscore", Mean=stats(4, 1), Std=stats(4, 1, low=0.5))
    ], seq(4)


for name, kwargs in {
    "causal": {"padding": "causal", "dilation": 2},
    "same": {"padding": "same"},
    "same-stride": {"padding": "same", "stride": 2},
    "manual": {"padding": (1, 2)},
}.items():

    def make(kwargs=kwargs):
        return sq(M.conv1d("conv", w(3, 3, 4), w(4, seed=1), **kwargs), M.relu("relu"))

    case(f"seq-conv1d-{name}")(make)


@case("seq-conv1d-norm-pool-gap")
def _():
    # the shape of chengab12's net: causal conv, layer norm (old: over C and T), pooling
    return sq(
        M.conv1d("conv1", w(3, 3, 4), w(4, seed=1), padding="causal"),
        M.relu("relu1"),
        M.layer_norm("ln1", 4),
        M.conv1d("conv2", w(2, 4, 5, seed=2), w(5, seed=3), padding="same"),
        M.batch_norm("bn", *(stats(5, seed=s, low=0.5) for s in (1, 2, 3, 4))),
        M.pool1d("Max", "pool", 2, 2),
        M.pool1d("Average", "apool", 2, 1, "same"),
        M.global_pool1d("Average", "gap"),
        M.fully_connected("fc", w(2, 5), w(2, seed=4)),
    )


@case("seq-conv1d-then-lstm-layernorm")
def _():
    return sq(
        M.conv1d("conv", w(2, 3, 4), w(4, seed=1), padding="same"),
        M.layer_norm("ln", 4, "auto"),
        M.recurrent("LSTM", "lstm", 4, 3),
        M.global_pool1d("Max", "gmp"),
    )


@case("seq-conv1d-residual")
def _():
    layers = [
        M.sequence_input("in", 3),
        M.conv1d("conv", w(3, 3, 3), w(3, seed=1), padding="same"),
        M.addition("add"),
        M.fully_connected("fc", w(2, 3), w(2, seed=2)),
    ]
    pairs = [("in", "conv"), ("conv", "add/in1"), ("in", "add/in2"), ("add", "fc")]
    return Graph(layers, pairs, {"in": seq(3)})


@case("seq-lstm-state-inputs-outputs")
def _():
    layers = [
        M.sequence_input("in", 3),
        M.feature_input("h", 4),
        M.feature_input("c", 4),
        M.recurrent("LSTM", "lstm", 3, 4, state_inputs=True, state_outputs=True),
    ]
    pairs = [("in", "lstm/in"), ("h", "lstm/hidden"), ("c", "lstm/cell")]
    return Graph(
        layers, pairs, {"in": seq(3), "h": (4,), "c": (4,)}, container="dlnetwork"
    )


@case("seq-transformer")
def _():
    # the shape of MathWorks' transformer example: embedding + attention + 'last'
    layers = [
        M.sequence_input("in", 3),
        M.position_embedding("pos", 3, 16),
        M.addition("add"),
        M.self_attention("att1", 3, 3, 12, mask="causal"),
        M.self_attention("att2", 3, 2, 8, value=6, out=5, seed=1),
        M.indexing1d("last"),
        M.fully_connected("fc", w(2, 5), w(2, seed=1)),
    ]
    pairs = [
        ("in", "pos"),
        ("in", "add/in1"),
        ("pos", "add/in2"),
        ("add", "att1"),
        ("att1", "att2"),
        ("att2", "last"),
        ("last", "fc"),
    ]
    # a dlnetwork: its predict applies the causal mask (a DAGNetwork's does not)
    return Graph(layers, pairs, {"in": seq(3)}, container="dlnetwork")


@case("seq-attention-padding-mask")
def _():
    # the mask input passes a ReLU, so about half of its steps are 0 (padding)
    layers = [
        M.sequence_input("in", 3),
        M.sequence_input("pad", 3),
        M.relu("padrelu"),
        M.self_attention("att", 3, 2, 8, padding_mask=True),
    ]
    pairs = [("in", "att/in"), ("pad", "padrelu"), ("padrelu", "att/mask")]
    return Graph(layers, pairs, {"in": seq(3), "pad": seq(3)}, container="dlnetwork")


@case("seq-attention-custom-mask")
def _():
    mask = (np.random.default_rng(3).uniform(size=(10, 10)) > 0.4) | np.eye(
        10, dtype=bool
    )
    return sq(M.self_attention("att", 3, 1, 4, mask=mask))


@case("seq-attention-scores-output")
def _():
    # a dlnetwork returning both ports: the causal mask shows in the scores
    layers = [
        M.sequence_input("in", 3),
        M.self_attention("att", 3, 2, 8, mask="causal", scores=True),
    ]
    return Graph(
        layers,
        [("in", "att")],
        {"in": seq(3)},
        container="dlnetwork",
        outputs=("att/scores", "att/out"),
    )


@case("seq-attention-scores-unused")
def _():
    layers = [
        M.sequence_input("in", 3),
        M.self_attention("att", 3, 3, 6, scores=True),
        M.indexing1d("last"),
    ]
    return Graph(
        layers, [("in", "att"), ("att/out", "last")], {"in": seq(3)}, "dlnetwork"
    )


@case("seq-attention-scores-padding-function")
def _():
    # scores after the padding mask, summed over the queries by a later layer
    layers = [
        M.sequence_input("in", 3),
        M.sequence_input("pad", 3),
        M.relu("padrelu"),
        M.self_attention("att", 3, 2, 4, padding_mask=True, scores=True),
        M.function_layer("fs", "@(s) sum(s.^2, 2)"),
    ]
    pairs = [
        ("in", "att/in"),
        ("pad", "padrelu"),
        ("padrelu", "att/mask"),
        ("att/scores", "fs"),
    ]
    return Graph(
        layers,
        pairs,
        {"in": seq(3), "pad": seq(3)},
        "dlnetwork",
        outputs=("att/out", "fs"),
    )


@case("seq-attention-after-conv1d")
def _():
    return sq(
        M.conv1d("conv", w(2, 3, 4), w(4, seed=1), padding="causal"),
        M.self_attention("att", 4, 2, 4),
        M.indexing1d("first", "first"),
    )


@case("seq-word-embedding")
def _():
    return [
        M.sequence_input("in", 1),
        M.word_embedding("emb", 4, 6),
        M.recurrent("LSTM", "lstm", 4, 3, last=True),
    ], ("words", 6)


@case("seq-embedding-concatenation")
def _():
    return sq(M.embedding_concatenation("cls", 3), M.indexing1d("first", "first"))


@case("seq-folding")
def _():
    layers = [
        M.sequence_input("in", (5, 4, 2)),
        M.sequence_folding("fold"),
        M.conv2d("conv", w(3, 3, 2, 3), w(3, seed=1), padding="same"),
        M.relu("relu"),
        M.sequence_unfolding("unfold"),
        M.flatten("flat"),
        M.recurrent("LSTM", "lstm", 60, 4, last=True),
    ]
    pairs = [
        ("in", "fold"),
        ("fold/out", "conv"),
        ("conv", "relu"),
        ("relu", "unfold/in"),
        ("fold/miniBatchSize", "unfold/miniBatchSize"),
        ("unfold", "flat"),
        ("flat", "lstm"),
    ]
    return Graph(layers, pairs, {"in": ("imgseq", 5, 4, 2)})


# ---------------------------------------------------------------------------------------------


def build(made):
    """(variables for the .mat file, layers, connections or None, input sizes)."""
    if isinstance(made, Graph):
        make = {"dag": M.dag, "dlnetwork": M.dlnetwork, "lgraph": M.layer_graph}[
            made.container
        ]
        extra = {"outputs": made.outputs} if made.outputs else {}
        return (
            {"net": make(made.layers, made.pairs, **extra)},
            made.layers,
            made.pairs,
            made.sizes,
        )
    layers, size = made
    return {"net": M.series(layers)}, layers, None, {layers[0].get("Name"): size}


STEPS = 7  # time steps of test sequences


def seq(channels: int) -> tuple:
    """Input size of a vector sequence input (C×N×T in MATLAB)."""
    return ("seq", channels)


def matlab_input(size: tuple, n: int = 2, seed: int = 42) -> np.ndarray:
    if size[0] == "seq":
        return rng(seed).standard_normal((size[1], n, STEPS)).astype(np.float32)
    if size[0] == "words":  # 1-based word indices, some out of the vocabulary
        return rng(seed).integers(0, size[1] + 3, (1, n, STEPS)).astype(np.float32)
    if size[0] == "imgseq":
        return rng(seed).standard_normal((*size[1:], n, STEPS)).astype(np.float32)
    return rng(seed).standard_normal((*size, n)).astype(np.float32)


def to_torch_input(x: np.ndarray, sequence: bool = False) -> np.ndarray:
    """MATLAB S...×C×N → N×C×S..., C×N → N×C, C×N×T → N×T×C."""
    if sequence and x.ndim == 5:  # H×W×C×N×T → N×T×C×H×W
        return x.transpose(3, 4, 2, 0, 1)
    if sequence:
        return x.transpose(1, 2, 0)
    if x.ndim == 2:
        return x.T
    return x.transpose(x.ndim - 1, x.ndim - 2, *range(x.ndim - 2))


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_matches_reference(name: str, tmp_path) -> None:
    variables, layers, pairs, sizes = build(CASES[name]())
    result, out = convert_records(tmp_path, variables)
    xs = {
        layer: matlab_input(size, seed=42 + i)
        for i, (layer, size) in enumerate(sizes.items())
    }
    model = import_generated(out).load_model()
    args = [
        torch.from_numpy(
            np.ascontiguousarray(to_torch_input(xs[spec.layer], spec.type.time))
        )
        for spec in result.network.inputs
    ]
    copies = [a.clone() for a in args]
    with torch.no_grad():
        ys = model(*args)
    for a, c in zip(args, copies, strict=True):  # in-place layers keep off inputs
        assert torch.equal(a, c), f"{name}: forward modified its input"
    ys = ys if isinstance(ys, tuple) else (ys,)
    if pairs is None:
        expected = [R.run_layers(layers, xs[layers[0].get("Name")])[-1]]
    else:
        values = R.run_graph(layers, pairs, xs)
        expected = [values[o.port.layer][o.port.index] for o in result.network.outputs]
    for y, e in zip(ys, expected, strict=True):
        assert_parity(y.numpy(), R.to_torch(e), f"layer {name}")


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
    model = import_generated(out).load_model()
    model.normalize_input = False
    with torch.no_grad():
        y = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    np.testing.assert_array_equal(y, x)


def test_output_names_pick_outputs_and_prune(tmp_path) -> None:
    """dlnetwork OutputNames may name a non-terminal layer; the rest is left out."""
    layers = [
        M.feature_input("in", 4),
        M.fully_connected("fc", w(3, 4), w(3, seed=1)),
        M.dropout("drop", 0.2),
        M.fully_connected("head", w(2, 3), w(2, seed=2)),
        M.softmax("sm"),
    ]
    pairs = M.chain_pairs(["in", "fc", "drop", "head", "sm"])
    result, out = convert_records(
        tmp_path, {"net": M.dlnetwork(layers, pairs, outputs=["drop"])}
    )
    assert [n.name for n in result.network.nodes] == ["in", "fc", "drop"]
    assert any("'head'" in note and "'sm'" in note for note in result.notes)
    x = matlab_input((4,))
    y = import_generated(out).load_model()(torch.from_numpy(np.ascontiguousarray(x.T)))
    expected = R.run_layers(layers[:3], x)[-1]
    assert_parity(y.detach().numpy(), R.to_torch(expected), "OutputNames pruning")


def test_sinusoidal_position_encoding_is_a_stub(tmp_path) -> None:
    from codegen.diagnostics import ConversionError

    layer = M.plain_layer("SinusoidalPositionEncodingLayer", "pe", OutputSize=M.d(6))
    net = {"net": M.series([M.sequence_input("in", 4), layer])}
    with pytest.raises(ConversionError) as info:
        convert_records(tmp_path, net, strict=True)
    assert (
        "'pe' (nnet.cnn.layer.SinusoidalPositionEncodingLayer)" in info.value.render()
    )
    assert "positionEmbeddingLayer" in info.value.render()
    result, out = convert_records(tmp_path, net)
    assert result.network.outputs[0].type.channels == 6  # OutputSize
    model = import_generated(out).load_model()
    with pytest.raises(NotImplementedError, match="SinusoidalPositionEncodingLayer"):
        model(torch.zeros(1, 5, 4))
