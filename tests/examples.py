"""The project's own example networks, built from seeded random weights.

Each one is saved as examples/<name>.mat in MATLAB's format and converted
into generated_examples/<name>/ (checked byte for byte by test_examples.py;
rebuilt by `nox -s examples_update`). Each covers a distinct edge case,
described in EXAMPLES and in generated_examples/README.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matlab as M
import numpy as np


def _w(g: np.random.Generator, *shape: int, scale: float = 0.3) -> np.ndarray:
    return (g.standard_normal(shape) * scale).astype(np.float32)


def _bn(g: np.random.Generator, name: str, c: int) -> Any:
    return M.batch_norm(
        name,
        _w(g, c, scale=0.1),
        g.uniform(0.5, 1.5, c).astype(np.float32),
        g.uniform(0.8, 1.2, c).astype(np.float32),
        _w(g, c, scale=0.1),
    )


def digits_cnn() -> dict[str, Any]:
    g = np.random.default_rng(1)
    digits = [str(i) for i in range(10)]
    layers = [
        M.image_input(
            "imageinput",
            (28, 28, 1),
            "zerocenter",
            AverageImage=np.full((1, 1), 33.3, np.float32),
        ),
        M.conv2d("conv_1", _w(g, 3, 3, 1, 8), _w(g, 8), padding="same"),
        _bn(g, "batchnorm_1", 8),
        M.relu("relu_1"),
        M.max_pool2d("maxpool_1", (2, 2), (2, 2)),
        M.conv2d(
            "conv_2",
            _w(g, 3, 3, 8, 16, scale=0.1),
            _w(g, 16),
            stride=(2, 2),
            padding="same",
        ),
        _bn(g, "batchnorm_2", 16),
        M.relu("relu_2"),
        M.fully_connected("fc", _w(g, 10, 7 * 7 * 16, scale=0.05), _w(g, 10)),
        M.softmax("softmax"),
        M.classification("classoutput", digits),
    ]
    return {"net": M.series(layers)}


def legacy_alexnet_2017() -> dict[str, Any]:
    """Field sets of 2017 files: Padding [v h], 4-D FC kernels, ClassNames."""
    g = np.random.default_rng(2)
    size = (19, 17, 3)
    net = M.series(
        [
            M.image_input(
                "data",
                size,
                "zerocenter",
                AverageImage=g.uniform(90, 130, size).astype(np.float32),
            ),
            M.conv2d(
                "conv1",
                _w(g, 5, 5, 3, 8, scale=0.02),
                _w(g, 8),
                stride=(2, 2),
                padding=(1, 1),
                legacy=True,
            ),
            M.relu("relu1"),
            M.cross_channel_norm("norm1", 4, alpha=1e-4, beta=0.75, k=2.0),
            M.max_pool2d("pool1", (3, 3), (2, 2), (0, 0), legacy=True),
            M.conv2d(
                "conv2",
                _w(g, 3, 3, 4, 12, scale=0.1),
                _w(g, 12),
                padding=(1, 1),
                num_filters=(6, 6),
                legacy=True,
            ),
            M.relu("relu2"),
            M.fully_connected(
                "fc6", _w(g, 4, 3, 12, 16, scale=0.1), _w(g, 16), input_size=(4, 3, 12)
            ),
            M.relu("relu6"),
            M.dropout("drop6", 0.5),
            M.fully_connected(
                "fc8", _w(g, 1, 1, 16, 4), _w(g, 4), input_size=(1, 1, 16)
            ),
            M.softmax("prob"),
            M.classification("output", ["cat", "dog", "car", "tree"]),
        ]
    )
    layers = net.fields["Layers"]
    out = layers[-1]
    fields = {
        k: v for k, v in out.fields.items() if k not in ("Categories", "NumClasses")
    }
    layers[-1] = type(out)(
        out.classname, {**fields, "ClassNames": ["cat", "dog", "car", "tree"]}, True
    )
    return {"net": net}


def segmentation() -> dict[str, Any]:
    g = np.random.default_rng(3)
    classes = ["background", "road", "car"]
    layers = [
        M.image_input(
            "input",
            (24, 30, 3),
            "rescale",
            Min=np.zeros((1, 1, 3), np.float32),
            Max=np.full((1, 1, 3), 255, np.float32),
            TargetMin=-1.0,
            TargetMax=1.0,
        ),
        M.conv2d(
            "enc_conv",
            _w(g, 3, 3, 3, 8),
            _w(g, 8),
            padding=(1, 1, 1, 1),
            padding_value="symmetric-include-edge",
        ),
        M.relu("enc_relu"),
        M.max_pool2d("enc_pool", (2, 2), (2, 2), (0, 1, 0, 1)),
        M.conv2d(
            "mid_conv",
            _w(g, 3, 3, 8, 8, scale=0.1),
            _w(g, 8),
            padding=(1, 1, 1, 1),
            padding_value="replicate",
        ),
        M.leaky_relu("mid_relu", 0.2),
        M.transposed_conv2d(
            "dec_up",
            _w(g, 3, 3, 8, 8, scale=0.1),
            _w(g, 8),
            stride=(2, 2),
            cropping=(0, 1, 0, 1),
        ),
        M.conv2d("dec_conv", _w(g, 1, 1, 8, 3), _w(g, 3)),
        M.softmax("softmax"),
        M.pixel_classification("labels", classes, [0.5, 2.0, 3.0]),
    ]
    return {"net": M.series(layers)}


def feature_regression() -> dict[str, Any]:
    g = np.random.default_rng(4)
    layers = [
        M.feature_input(
            "features",
            12,
            "zscore",
            Mean=_w(g, 12, 1),
            Std=g.uniform(0.5, 2, (12, 1)).astype(np.float32),
        ),
        M.fully_connected("fc_1", _w(g, 32, 12), _w(g, 32)),
        _bn(g, "bn_1", 32),
        M.elu("elu_1", 1.0),
        M.fully_connected("fc_2", _w(g, 16, 32), _w(g, 16)),
        M.gelu("gelu", "tanh"),
        M.fully_connected("fc_3", _w(g, 2, 16), _w(g, 2)),
        M.regression("regressionoutput"),
    ]
    return {"layers": layers}


def residual_dag() -> dict[str, Any]:
    """A small ResNet: two residual blocks, one with a projection shortcut."""
    g = np.random.default_rng(5)

    def block(prefix: str, c_in: int, c_out: int, stride: int) -> tuple[list, list]:
        layers = [
            M.conv2d(
                f"{prefix}_conv1",
                _w(g, 3, 3, c_in, c_out, scale=0.2),
                _w(g, c_out),
                stride=(stride, stride),
                padding="same",
            ),
            _bn(g, f"{prefix}_bn1", c_out),
            M.relu(f"{prefix}_relu1"),
            M.conv2d(
                f"{prefix}_conv2",
                _w(g, 3, 3, c_out, c_out, scale=0.2),
                _w(g, c_out),
                padding="same",
            ),
            _bn(g, f"{prefix}_bn2", c_out),
            M.addition(f"{prefix}_add"),
            M.relu(f"{prefix}_relu2"),
        ]
        names = [layer.get("Name") for layer in layers]
        pairs = [
            *M.chain_pairs(names[:5]),
            (names[4], f"{prefix}_add/in1"),
            (names[5], names[6]),
        ]
        if stride > 1 or c_in != c_out:
            layers.append(
                M.conv2d(
                    f"{prefix}_skip",
                    _w(g, 1, 1, c_in, c_out, scale=0.3),
                    _w(g, c_out),
                    stride=(stride, stride),
                )
            )
            pairs.append((f"{prefix}_skip", f"{prefix}_add/in2"))
        return layers, pairs

    stem = [
        M.image_input(
            "input",
            (32, 32, 3),
            "zscore",
            Mean=_w(g, 1, 1, 3),
            Std=g.uniform(0.5, 1.5, (1, 1, 3)).astype(np.float32),
        ),
        M.conv2d("stem_conv", _w(g, 3, 3, 3, 8), _w(g, 8), padding="same"),
        _bn(g, "stem_bn", 8),
        M.relu("stem_relu"),
    ]
    b1, p1 = block("res1", 8, 8, 1)
    b2, p2 = block("res2", 8, 16, 2)
    head = [
        M.global_avg_pool2d("gap"),
        M.fully_connected("fc", _w(g, 5, 16), _w(g, 5)),
        M.softmax("softmax"),
        M.classification("classoutput", ["a", "b", "c", "d", "e"]),
    ]
    pairs = M.chain_pairs(["input", "stem_conv", "stem_bn", "stem_relu", "res1_conv1"])
    pairs += [
        *p1,
        ("stem_relu", "res1_add/in2"),
        ("res1_relu2", "res2_conv1"),
        ("res1_relu2", "res2_skip"),
    ]
    pairs += p2 + M.chain_pairs(["res2_relu2", "gap", "fc", "softmax", "classoutput"])
    return {"net": M.dag([*stem, *b1, *b2, *head], pairs)}


def two_input_two_output() -> dict[str, Any]:
    """A dlnetwork with an image and a feature input and two named outputs."""
    g = np.random.default_rng(6)
    layers = [
        M.image_input(
            "image",
            (12, 10, 1),
            "rescale",
            Min=np.zeros((1, 1), np.float32),
            Max=np.full((1, 1), 255, np.float32),
            TargetMin=0.0,
            TargetMax=1.0,
        ),
        M.conv2d("conv", _w(g, 3, 3, 1, 4), _w(g, 4), stride=(2, 2), padding="same"),
        M.relu("relu"),
        M.flatten("flatten"),
        M.feature_input("meta", 3),
        M.fully_connected("meta_fc", _w(g, 4, 3), _w(g, 4)),
        M.concatenation("concat", 1),
        M.fully_connected("mu", _w(g, 2, 124, scale=0.1), _w(g, 2)),
        M.fully_connected("logvar", _w(g, 2, 124, scale=0.1), _w(g, 2)),
        M.tanh("bounded"),
    ]
    pairs = [
        ("image", "conv"),
        ("conv", "relu"),
        ("relu", "flatten"),
        ("meta", "meta_fc"),
        ("flatten", "concat/in1"),
        ("meta_fc", "concat/in2"),
        ("concat", "mu"),
        ("concat", "logvar"),
        ("logvar", "bounded"),
    ]
    return {"encoder": M.dlnetwork(layers, pairs, outputs=["mu", "bounded"])}


def lstm_classifier() -> dict[str, Any]:
    """Sequence-to-label: z-scored input, two LSTMs, 'last' output, classes."""
    g = np.random.default_rng(7)
    layers = [
        M.sequence_input(
            "sequenceinput",
            6,
            "zscore",
            Mean=_w(g, 6, 1),
            Std=g.uniform(0.5, 2, (6, 1)).astype(np.float32),
        ),
        M.recurrent("LSTM", "lstm_1", 6, 16, seed=1),
        M.dropout("dropout", 0.2),
        M.recurrent(
            "LSTM",
            "lstm_2",
            16,
            8,
            seed=2,
            last=True,
            h0=np.linspace(-0.2, 0.2, 8),
            c0=np.linspace(0.1, -0.1, 8),
        ),
        M.fully_connected("fc", _w(g, 4, 8), _w(g, 4)),
        M.softmax("softmax"),
        M.classification("classoutput", ["normal", "bearing", "valve", "piston"]),
    ]
    return {"net": M.series(layers)}


def bilstm_gru_regression() -> dict[str, Any]:
    """Sequence-to-sequence regression: 1-D causal convolution (N×C×T inside),
    a BiLSTM, a GRU in 'before-multiplication' mode (a cell written into
    model.py) and a per-time-step fully connected layer."""
    g = np.random.default_rng(8)
    layers = [
        M.sequence_input("input", 3),
        M.conv1d("conv", _w(g, 3, 3, 8), _w(g, 8), padding="causal"),
        M.relu("relu"),
        M.layer_norm("norm", 8, "channel-only"),
        M.recurrent("BiLSTM", "bilstm", 8, 6, seed=3),
        M.recurrent("GRU", "gru", 12, 5, seed=4, reset="before-multiplication"),
        M.fully_connected("fc", _w(g, 2, 5), _w(g, 2)),
        M.regression("regressionoutput"),
    ]
    return {"net": M.series(layers)}


EXAMPLES: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "digits_cnn": (
        digits_cnn,
        "the README example: 'same' padding with stride 2 computed at run time, "
        "column-major flatten folded into the FC weights, input normalization, CLASSES",
    ),
    "legacy_alexnet_2017": (
        legacy_alexnet_2017,
        "2017 field sets (Padding [v h], 4-D FC kernels, ClassNames), full AverageImage "
        "with MATLAB's per-channel fallback, filter groups, even-window cross-channel norm",
    ),
    "segmentation": (
        segmentation,
        "pixel classification with ClassWeights, asymmetric pooling pad, transposed-conv "
        "cropping, 'symmetric-include-edge' and 'replicate' padding, rescale-symmetric input",
    ),
    "feature_regression": (
        feature_regression,
        "a saved layer array: featureInputLayer z-score, batch norm on features, ELU/GELU, "
        "half-MSE regression loss in the docstring",
    ),
    "residual_dag": (
        residual_dag,
        "a DAGNetwork with skip connections (identity and projection shortcuts): "
        "branches named after their layers, x reused along chains, tensors freed "
        "after their last use",
    ),
    "two_input_two_output": (
        two_input_two_output,
        "a dlnetwork with an image and a feature input and two OutputNames: forward "
        "takes and returns them in a documented order; flatten in MATLAB's order",
    ),
    "lstm_classifier": (
        lstm_classifier,
        "an LSTM classifier on N×T×C sequences: z-score input, OutputMode 'last', "
        "a non-zero stored initial state, from_matlab() for one C×T sequence",
    ),
    "bilstm_gru_regression": (
        bilstm_gru_regression,
        "sequence-to-sequence regression: causal 1-D convolution kept as N×C×T, "
        "BiLSTM, GRU 'before-multiplication' cell, per-step FC, half-MSE over time",
    ),
}
