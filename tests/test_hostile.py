"""Broken and hostile files: one regression test per bug the fuzzer found.

Every mutant is generated here from the project's own builders (never copied
from ../shared). Each test states what the file says and checks the refusal
names the file, the layer where there is one, and what is wrong.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import matlab as M
import numpy as np
import pytest
from test_matfile import small_net

from codegen import untrusted
from codegen.diagnostics import ConversionError
from codegen.inspection import inspect, render_text
from codegen.matfile import MatObject, write_mat
from codegen.naming import fallback_name
from codegen.pipeline import convert
from codegen.verify import verify
from examples import feature_regression, two_input_two_output

sys.path.insert(0, str(Path(__file__).parent / "fuzz"))
import fuzz_bytes


def refused(
    tmp_path: Path, variables: dict[str, Any] | None = None, **options: Any
) -> str:
    """Write ``variables`` (if given) to net.mat, convert, return the refusal."""
    mat = tmp_path / "net.mat"
    if variables is not None:
        write_mat(mat, variables)
    out = tmp_path / "out"
    with pytest.raises(ConversionError) as info:
        convert(mat, out, **options)
    assert not out.exists() or not any(out.iterdir()), "written despite refusal"
    text = info.value.render()
    assert mat.name in text
    assert "internal error" not in text.lower() and "please report" not in text.lower()
    return text


def chain(*layers: MatObject) -> dict[str, Any]:
    return {"net": M.series(list(layers))}


def fc(name: str, out: int, inputs: int, **changes: Any) -> MatObject:
    g = np.random.default_rng(0)
    layer = M.fully_connected(
        name, g.standard_normal((out, inputs)).astype(np.float32), np.zeros(out)
    )
    return MatObject(layer.classname, {**layer.fields, **changes}, layer.saveobj)


def with_fields(layer: MatObject, **changes: Any) -> MatObject:
    return MatObject(layer.classname, {**layer.fields, **changes}, layer.saveobj)


# --------------------------------------------------------------------------
# the reader: native crashes, declared sizes, truncation


def _raw_matio_dies(path: Path) -> bool:
    """Whether mat-io, run unprotected in a fresh interpreter, is killed."""
    code = (
        "import sys\nfrom matio import load_from_mat\n"
        "try:\n    load_from_mat(sys.argv[1])\nexcept BaseException:\n    pass\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, timeout=120
    )
    return proc.returncode < 0


def test_native_crash_in_mat_io_becomes_a_refusal(tmp_path: Path) -> None:
    """An inner-element mutant of an example that segfaults mat-io's reader."""
    write_mat(tmp_path / "full.mat", two_input_two_output())
    data = fuzz_bytes.inner(
        (tmp_path / "full.mat").read_bytes(), 1095513148, 506456969, 2127877499
    )
    (tmp_path / "net.mat").write_bytes(data)
    assert _raw_matio_dies(tmp_path / "net.mat"), "mutant no longer crashes mat-io"
    text = refused(tmp_path)
    assert "crashed" in text and ("SIGSEGV" in text or "SIGBUS" in text)


def test_declared_size_beyond_the_data_is_refused(tmp_path: Path) -> None:
    """A dimension set to ~2^31 inside a compressed element (32 GiB claimed)."""
    write_mat(tmp_path / "full.mat", two_input_two_output())
    data = fuzz_bytes.inner(
        (tmp_path / "full.mat").read_bytes(), 3361672518, 580435377, 1456404716
    )
    (tmp_path / "net.mat").write_bytes(data)
    assert "far larger than the data it holds" in refused(tmp_path)


@pytest.mark.parametrize(
    ("cut", "words"),
    [
        (lambda d: d[:60], "not a MATLAB .mat file"),
        (lambda d: d[:300], "only"),
        (lambda d: d[:-5], "truncated"),
        (lambda d: d[:128] + d[136:], "not a variable"),
    ],
)
def test_truncation_is_located(tmp_path: Path, cut: Any, words: str) -> None:
    write_mat(tmp_path / "full.mat", {"net": small_net()})
    (tmp_path / "net.mat").write_bytes(cut((tmp_path / "full.mat").read_bytes()))
    assert words in refused(tmp_path)


def test_damaged_compressed_stream_is_located(tmp_path: Path) -> None:
    write_mat(tmp_path / "full.mat", {"net": small_net()})
    data = bytearray((tmp_path / "full.mat").read_bytes())
    data[128 + 8 + 40 : 128 + 8 + 80] = bytes(40)  # zeros inside the zlib stream
    (tmp_path / "net.mat").write_bytes(bytes(data))
    text = refused(tmp_path)
    assert "compressed variable at byte 128" in text


def test_subsystem_offset_outside_the_file(tmp_path: Path) -> None:
    write_mat(tmp_path / "full.mat", {"net": small_net()})
    data = bytearray((tmp_path / "full.mat").read_bytes())
    data[116:124] = (len(data) + 1000).to_bytes(8, "little")
    (tmp_path / "net.mat").write_bytes(bytes(data))
    assert "subsystem" in refused(tmp_path)


def test_scan_counts_the_decompressed_size(tmp_path: Path) -> None:
    """The memory limit is a multiple of this; check it against zlib itself."""
    write_mat(tmp_path / "net.mat", {"net": small_net()})
    data = (tmp_path / "net.mat").read_bytes()
    elements = fuzz_bytes._elements(data)
    expected = sum(
        len(zlib.decompress(data[o + 8 : o + 8 + n])) if t == 15 else n + 8
        for o, t, n in elements
    )
    layout = untrusted.scan(tmp_path / "net.mat")
    assert layout.decompressed == expected
    assert layout.memory_limit == untrusted.MEMORY_FIXED + 16 * expected


# --------------------------------------------------------------------------
# the graph: connections, names, ports


def test_connections_of_different_lengths(tmp_path: Path) -> None:
    net = two_input_two_output()["encoder"]
    graph = net.fields["LayerGraph"]
    table = graph.fields["Connections"]
    uneven = {  # a struct of two cell columns (the writer has no uneven tables)
        "Source": [*table["Source"], "relu"],
        "Destination": list(table["Destination"]),
    }
    net = with_fields(net, LayerGraph=with_fields(graph, Connections=uneven))
    text = refused(tmp_path, {"encoder": net})
    assert "10 sources but 9 destinations" in text


def test_name_that_is_an_array(tmp_path: Path) -> None:
    layers = [
        M.feature_input("in", 3),
        with_fields(M.relu("relu"), Name=M.d([1e9, 1e9])),
    ]
    text = refused(tmp_path, chain(*layers))
    assert (
        "layer 2 (nnet.cnn.layer.ReLULayer) has a 1×2 float64 array as its Name" in text
    )


def test_name_that_is_an_empty_array_means_unnamed(tmp_path: Path) -> None:
    """numpy refuses the truth value of an empty array: this once escaped."""
    layers = [
        M.feature_input("in", 3),
        with_fields(M.relu("relu"), Name=np.zeros((0, 0))),
        M.regression("out"),
    ]
    write_mat(tmp_path / "net.mat", chain(*layers))
    result = convert(tmp_path / "net.mat", None)
    unnamed = fallback_name("nnet.cnn.layer.ReLULayer") + "_1"  # as if saved unnamed
    assert [n.name for n in result.network.nodes] == ["in", unnamed, "out"]


def test_layers_in_reverse_order_leave_a_layer_without_input(tmp_path: Path) -> None:
    """A chain saved backwards: its first layer (an output) has no input."""
    layers = [M.feature_input("in", 3), fc("fc", 2, 3), M.regression("out")][::-1]
    text = refused(tmp_path, chain(*layers))
    assert "layer 'out'" in text and "nothing is connected to its input" in text


def test_duplicated_layer(tmp_path: Path) -> None:
    """A layer listed twice in a DAG: the copy (renamed) has no connections."""
    relu = M.relu("relu")
    net = M.dag(
        [M.feature_input("in", 3), relu, relu, M.regression("out")],
        M.chain_pairs(["in", "relu", "out"]),
    )
    text = refused(tmp_path, {"net": net})
    assert "layer 'relu_1'" in text and "nothing is connected" in text


def test_duplicated_input_layer_is_left_out(tmp_path: Path) -> None:
    """The copy of a duplicated input layer feeds nothing: it is not an
    output of the network (verify once failed on it), just left out."""
    head = M.feature_input("in", 3)
    net = M.dag(
        [head, head, fc("fc", 2, 3), M.regression("out")],
        M.chain_pairs(["in", "fc", "out"]),
    )
    write_mat(tmp_path / "net.mat", {"net": net})
    result = convert(tmp_path / "net.mat", tmp_path / "out")
    assert [o.port.layer for o in result.network.outputs] == ["out"]
    assert any("left out: 'in_1'" in n for n in result.notes)
    assert verify(tmp_path / "net.mat", tmp_path / "out").ok


def test_connection_from_a_missing_output_port(tmp_path: Path) -> None:
    net = M.dag(
        [M.feature_input("in", 3), M.relu("relu"), M.regression("out")],
        [("in", "relu"), ("relu/out2", "out")],
    )
    text = refused(tmp_path, {"net": net})
    assert "layer 'out'" in text
    assert "output 2 of layer 'relu', which has 1 output" in text


def test_input_connected_twice(tmp_path: Path) -> None:
    net = M.dag(
        [M.feature_input("in", 3), M.relu("a"), M.relu("b"), M.regression("out")],
        [("in", "a"), ("in", "b"), ("a", "out"), ("b", "out")],
    )
    assert "input 'out' is connected twice" in refused(tmp_path, {"net": net})


def test_output_name_with_a_missing_port(tmp_path: Path) -> None:
    net = two_input_two_output()["encoder"]
    net = with_fields(net, OutputNames=["mu", "bounded/out7"])
    text = refused(tmp_path, {"encoder": net})
    assert "'bounded/out7'" in text and "has 1 output(s)" in text


def test_output_name_of_a_missing_layer(tmp_path: Path) -> None:
    net = with_fields(two_input_two_output()["encoder"], OutputNames=["nowhere"])
    assert "names 'nowhere', which is not a layer" in refused(
        tmp_path, {"encoder": net}
    )


def test_output_that_is_an_input_layer_verifies(tmp_path: Path) -> None:
    """OutputNames naming one input of a two-input net: the network is that
    input alone; the reference must not run the other input's branch."""
    net = with_fields(two_input_two_output()["encoder"], OutputNames=["image"])
    write_mat(tmp_path / "net.mat", {"encoder": net})
    convert(tmp_path / "net.mat", tmp_path / "out")
    assert verify(tmp_path / "net.mat", tmp_path / "out").ok


def test_learnable_saved_as_a_cell(tmp_path: Path) -> None:
    layer = fc("fc_1", 2, 3)
    layer = with_fields(layer, Weights=[layer.fields["Weights"]])
    text = refused(tmp_path, chain(M.feature_input("in", 3), layer))
    assert "layer 'fc_1'" in text and "'Weights' holds a cell array" in text


def test_connection_into_an_input_layer(tmp_path: Path) -> None:
    """An edge from the second input's branch into the first input layer (no
    cycle): the input layer would have passed that branch's data on."""
    net = M.dag(
        [
            M.feature_input("a", 3),
            M.feature_input("b", 3),
            fc("fc_b", 3, 3),
            M.addition("add"),
            M.regression("out"),
        ],
        [
            ("a", "add/in1"),
            ("b", "fc_b"),
            ("fc_b", "add/in2"),
            ("fc_b", "a"),
            ("add", "out"),
        ],
    )
    text = refused(tmp_path, {"net": net})
    assert "layer 'a'" in text and "'fc_b' is connected into it" in text


def test_cross_channel_norm_without_optional_properties_verifies(
    tmp_path: Path,
) -> None:
    """Alpha, Beta and K missing: MATLAB's documented defaults, in the
    converter and in the reference alike."""
    norm = M.cross_channel_norm("norm", 3)
    fields = {k: v for k, v in norm.fields.items() if k not in ("Alpha", "Beta", "K")}
    norm = MatObject(norm.classname, fields, norm.saveobj)
    layers = [M.image_input("in", (4, 4, 3)), norm, M.regression("out")]
    write_mat(tmp_path / "net.mat", {"net": M.series(layers)})
    convert(tmp_path / "net.mat", tmp_path / "out")
    assert verify(tmp_path / "net.mat", tmp_path / "out").ok


def test_bias_saved_as_empty_text_verifies(tmp_path: Path) -> None:
    g = np.random.default_rng(0)
    conv = M.conv2d("conv", g.standard_normal((3, 3, 2, 4)).astype(np.float32), None)
    conv = with_fields(conv, Bias="")
    layers = [M.image_input("in", (5, 5, 2)), conv, M.regression("out")]
    write_mat(tmp_path / "net.mat", {"net": M.series(layers)})
    convert(tmp_path / "net.mat", tmp_path / "out")
    assert verify(tmp_path / "net.mat", tmp_path / "out").ok


def _conv(kind: str) -> tuple[MatObject, MatObject]:
    """An input layer and a 1-D or 2-D convolution of 2 → 4 channels."""
    g = np.random.default_rng(0)
    if kind == "conv1d":
        conv = M.conv1d("conv", g.standard_normal((3, 2, 4)), np.zeros(4))
        return M.sequence_input("in", 2), conv
    conv = M.conv2d("conv", g.standard_normal((3, 3, 2, 4)), np.zeros(4))
    return M.image_input("in", (5, 5, 2)), conv


@pytest.mark.parametrize("kind", ["conv1d", "conv2d"])
def test_convolution_without_num_filters_verifies(tmp_path: Path, kind: str) -> None:
    """NumFilters missing: the converter and the reference both count the
    filters the weights hold."""
    head, conv = _conv(kind)
    fields = {k: v for k, v in conv.fields.items() if k != "NumFilters"}
    conv = MatObject(conv.classname, fields, conv.saveobj)
    write_mat(
        tmp_path / "net.mat", {"net": M.series([head, conv, M.regression("out")])}
    )
    convert(tmp_path / "net.mat", tmp_path / "out")
    assert verify(tmp_path / "net.mat", tmp_path / "out").ok


def test_fully_connected_weights_saved_transposed(tmp_path: Path) -> None:
    layer = fc("fc_1", 4, 3)
    layer = with_fields(layer, Weights=layer.fields["Weights"]["Value"].T.copy())
    text = refused(tmp_path, chain(M.feature_input("in", 3), layer))
    assert "layer 'fc_1'" in text and "Weights are 3×4" in text and "4×3" in text


@pytest.mark.parametrize("key", ["InputWeights", "RecurrentWeights"])
def test_recurrent_weights_saved_transposed(tmp_path: Path, key: str) -> None:
    """8H×H and H×8H hold the same number of values: refused, not reshaped."""
    layer = M.recurrent("BiLSTM", "bilstm", 6, 6, seed=3)
    weights = layer.fields[key]["Value"]
    layer = with_fields(
        layer, **{key: {**layer.fields[key], "Value": weights.T.copy()}}
    )
    text = refused(
        tmp_path, chain(M.sequence_input("in", 6), layer, M.regression("out"))
    )
    assert "layer 'bilstm'" in text and f"{key} is 6×48" in text and "48×6" in text


@pytest.mark.parametrize("kind", ["conv1d", "conv2d"])
def test_convolution_weights_saved_permuted(tmp_path: Path, kind: str) -> None:
    """F×C×W×H holds as many values as H×W×C×F: refused, not reshaped."""
    head, conv = _conv(kind)
    weights = conv.fields["Weights"]["Value"]
    conv = with_fields(
        conv, Weights={**conv.fields["Weights"], "Value": weights.T.copy()}
    )
    text = refused(tmp_path, chain(head, conv, M.regression("out")))
    shape = "×".join(map(str, weights.shape))
    assert "layer 'conv'" in text and f"MATLAB saves it {shape}" in text


@pytest.mark.parametrize("key", ["HiddenState", "CellState"])
def test_zero_recurrent_state_of_the_wrong_size(tmp_path: Path, key: str) -> None:
    """An all-zero state is still checked: the reference would read it."""
    layer = M.recurrent("LSTM", "lstm", 3, 4, seed=1)
    layer = with_fields(layer, **{key: np.zeros(7, np.float32)})
    text = refused(
        tmp_path, chain(M.sequence_input("in", 3), layer, M.regression("out"))
    )
    assert (
        "layer 'lstm'" in text
        and f"{key} has 7 values" in text
        and "expected 4" in text
    )


def test_fully_connected_input_size_that_is_not_a_kernel_verifies(
    tmp_path: Path,
) -> None:
    """An InputSize of 3+ elements once meant H×W×C×O weights; weights that
    are already Out×In are read as they are, by converter and reference."""
    layers = [
        M.sequence_input("in", 5),
        fc("fc", 2, 5, InputSize=M.d([3.0] * 5)),
        M.regression("out"),
    ]
    write_mat(tmp_path / "net.mat", {"net": M.series(layers)})
    convert(tmp_path / "net.mat", tmp_path / "out")
    assert verify(tmp_path / "net.mat", tmp_path / "out").ok


def test_old_fully_connected_kernel_saved_two_dimensional_verifies(
    tmp_path: Path,
) -> None:
    """A grayscale H×W×1×1 kernel is saved H×W (trailing singletons drop)."""
    g = np.random.default_rng(0)
    kernel = g.standard_normal((4, 3)).astype(np.float32)
    layer = M.fully_connected("fc", kernel, np.zeros(1), input_size=(4, 3, 1))
    layer = with_fields(layer, OutputSize=M.d([1.0, 1.0, 1.0]))
    layers = [M.image_input("in", (4, 3, 1)), layer, M.regression("out")]
    write_mat(tmp_path / "net.mat", {"net": M.series(layers)})
    convert(tmp_path / "net.mat", tmp_path / "out")
    assert verify(tmp_path / "net.mat", tmp_path / "out").ok


@pytest.mark.parametrize("value", [9.2e18, -3.0, "replicate", "symmetric-include-edge"])
def test_conv1d_padding_value_verifies(tmp_path: Path, value: Any) -> None:
    """The reference pads 1-D convolutions with PaddingValue too."""
    g = np.random.default_rng(0)
    conv = M.conv1d("conv", g.standard_normal((3, 2, 4)), np.zeros(4), padding=(2, 1))
    conv = with_fields(conv, PaddingValue=value)
    layers = [M.sequence_input("in", 2), conv, M.regression("out")]
    write_mat(tmp_path / "net.mat", {"net": M.series(layers)})
    convert(tmp_path / "net.mat", tmp_path / "out")
    assert verify(tmp_path / "net.mat", tmp_path / "out").ok


def test_absurdly_long_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """10^5 layers would take hours to format; the cap is checked on a short
    chain by lowering it (writing 10^5 layers here would take minutes)."""
    from codegen import graph

    monkeypatch.setattr(graph, "MAX_LAYERS", 50)
    layers = [M.feature_input("in", 3)] + [M.relu(f"r{i}") for i in range(60)]
    assert "has 61 layers" in refused(tmp_path, {"net": layers})


# --------------------------------------------------------------------------
# hyper-parameters MATLAB would never save


IMPOSSIBLE = [
    ("DropoutLayer", "Probability", 2.0**63, "between 0 and 1"),
    ("DropoutLayer", "Probability", [1e9, 1e9], "between 0 and 1"),
    ("FullyConnectedLayer", "OutputSize", -1, "positive whole numbers"),
    ("FullyConnectedLayer", "OutputSize", 2.0**31, "far beyond"),
    ("Convolution2DLayer", "DilationFactor", [0, 0], "positive whole numbers"),
    ("Convolution2DLayer", "DilationFactor", [0.5, 0.5], "positive whole numbers"),
    ("Convolution2DLayer", "FilterSize", [1e9, 1e9], "far beyond"),
    ("Convolution2DLayer", "NumFilters", 0, "positive whole numbers"),
    ("Convolution2DLayer", "Stride", [-1, -1], "positive whole numbers"),
    ("BatchNormalizationLayer", "Epsilon", -1, "must be ≥ 0"),
    ("BatchNormalizationLayer", "Epsilon", float("nan"), "not a finite number"),
    ("ImageInputLayer", "InputSize", [1e9, 1e9, 1e9], "far beyond"),
    ("Convolution2DLayer", "Stride", "abc", "the text 'abc'"),
]


def _cnn(**changes: dict[str, Any]) -> dict[str, Any]:
    g = np.random.default_rng(0)
    layers = [
        M.image_input("in", (6, 6, 1)),
        M.conv2d("conv", g.standard_normal((3, 3, 1, 2)).astype(np.float32), None),
        M.batch_norm("bn", *(np.ones(2, np.float32),) * 4),
        M.dropout("drop", 0.2),
        fc("fc", 3, 32),
        M.regression("out"),
    ]
    for i, layer in enumerate(layers):
        short = layer.classname.rsplit(".", 1)[-1]
        if short in changes:
            layers[i] = with_fields(layer, **changes[short])
    return chain(*layers)


@pytest.mark.parametrize(("cls", "key", "value", "words"), IMPOSSIBLE)
def test_impossible_hyper_parameter(
    tmp_path: Path, cls: str, key: str, value: Any, words: str
) -> None:
    value = value if isinstance(value, str) else M.d(value)
    text = refused(tmp_path, _cnn(**{cls: {key: value}}))
    layer = {
        "DropoutLayer": "drop",
        "FullyConnectedLayer": "fc",
        "Convolution2DLayer": "conv",
        "BatchNormalizationLayer": "bn",
        "ImageInputLayer": "in",
    }[cls]
    assert f"layer '{layer}'" in text and f"its {key}" in text and words in text


def test_the_valid_network_of_those_tests_converts(tmp_path: Path) -> None:
    """The mutants above differ from this network in one field only."""
    write_mat(tmp_path / "net.mat", _cnn())
    convert(tmp_path / "net.mat", tmp_path / "out")


def test_untrained_layers_too_large_to_initialize(tmp_path: Path) -> None:
    """Plausible sizes each, but together 2^24 × 2^24 untrained weights."""
    empty = M.learnable(None)
    layers = [
        M.feature_input("in", 1 << 24),
        M.layer(
            "FullyConnectedLayer",
            "fc",
            version=3,
            InputSize="auto",
            OutputSize=M.d(1 << 24),
            Weights=empty,
            Bias=empty,
        ),
        M.regression("out"),
    ]
    names = ["in", "fc", "out"]
    text = refused(tmp_path, {"lgraph": M.layer_graph(layers, M.chain_pairs(names))})
    assert "without saved weights would need" in text and "'fc'" in text


def test_handler_failure_is_not_called_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Field sets a handler cannot read are reported as a damaged file."""
    from codegen import layers

    def broken(layer: Any) -> Any:
        raise IndexError("tuple index out of range")

    registry = dict(layers.registry())
    registry["nnet.cnn.layer.ReLULayer"] = broken
    monkeypatch.setattr("codegen.parse.registry", lambda: registry)
    text = refused(tmp_path, chain(M.feature_input("in", 3), M.relu("relu")))
    assert "layer 'relu'" in text and "damaged" in text


# --------------------------------------------------------------------------
# inspect


def test_inspect_with_categories_as_numbers(tmp_path: Path) -> None:
    layers = [
        M.feature_input("in", 3),
        fc("fc", 3, 3),
        M.softmax("sm"),
        with_fields(
            M.classification("out", ["a", "b", "c"]), Categories=M.d([1, 2, 3])
        ),
    ]
    write_mat(tmp_path / "net.mat", chain(*layers))
    report = inspect(tmp_path / "net.mat")
    assert "classes" not in report["layers"][-1]


def test_inspect_agrees_with_convert(tmp_path: Path) -> None:
    """Every layer is fine; the network's OutputNames is not: both refuse."""
    net = with_fields(two_input_two_output()["encoder"], OutputNames=["bounded/out7"])
    text = refused(tmp_path, {"encoder": net})
    report = inspect(tmp_path / "net.mat")
    assert report["refused"] == 0 and not report["convertible"]
    assert report["problem"] in text
    assert "but the network does not" in render_text(report)


# --------------------------------------------------------------------------
# verify --against with a malformed REF.mat


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("ref")
    write_mat(tmp / "net.mat", feature_regression())
    convert(tmp / "net.mat", tmp / "out")
    return tmp / "net.mat", tmp / "out"


def _x(n: int = 4) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 12))


BAD_REFS = [
    ({"x": _x(), "Y": np.zeros((4, 2))}, "has no X"),
    ({"X": "not numbers", "Y": np.zeros((4, 2))}, "'X' holds the text"),
    ({"X": _x(), "Y": [np.zeros(2), "b"]}, "'Y' holds the text"),
    ({"X": np.zeros((0, 0)), "Y": np.zeros((4, 2))}, "'X' is empty"),
    ({"X": np.zeros((4, 9)), "Y": np.zeros((4, 2))}, "do not fit the network"),
    ({"X": np.zeros((2, 3, 4)), "Y": np.zeros((4, 2))}, "do not fit the network"),
    ({"X": _x(), "Y": np.zeros((7, 3))}, "does not match the model's tensor"),
    (
        {"X": _x(), "Y": np.zeros((4, 2)), "names": ["fc_1", "x"], "acts": [_x()]},
        "names lists 2 layers but acts holds 1",
    ),
]


@pytest.mark.parametrize(("variables", "words"), BAD_REFS)
def test_verify_against_a_malformed_reference(
    tmp_path: Path, converted: tuple[Path, Path], variables: dict, words: str
) -> None:
    mat, out = converted
    write_mat(tmp_path / "REF.mat", variables)
    with pytest.raises(ConversionError) as info:
        verify(mat, out, against=tmp_path / "REF.mat")
    text = info.value.render()
    assert text.startswith("REF.mat: ") and words in text, text


def test_verify_against_a_reference_with_nans(
    tmp_path: Path, converted: tuple[Path, Path]
) -> None:
    mat, out = converted
    y = np.full((4, 2), np.nan)
    write_mat(tmp_path / "REF.mat", {"X": _x(), "Y": y})
    report = verify(mat, out, against=tmp_path / "REF.mat")
    assert not report.ok
    assert any("holds 8 NaN value(s)" in n for n in report.notes)


# --------------------------------------------------------------------------
# Detectors whose networks are saved as Layers + RegLayers structs


def _detector(branch: Any = 5.0) -> MatObject:
    g = np.random.default_rng(0)
    w = g.standard_normal
    cls_layers = [
        M.image_input("in", (6, 5, 2)),
        M.conv2d(
            "conv", w((3, 3, 2, 4)).astype(np.float32), w(4), padding=(1, 1, 1, 1)
        ),
        M.relu("relu_1"),
        M.fully_connected("fc_1", w((6, 5, 4, 8)).astype(np.float32), w(8), (6, 5, 4)),
        M.relu("relu_2"),
        M.fully_connected("fc_2", w((3, 8)).astype(np.float32), w(3)),
        M.softmax("softmax"),
        M.classification("out", ["car", "bike", "Background"]),
    ]
    reg_layers = [
        M.fully_connected("fc_reg", w((4, 8)).astype(np.float32), w(4)),
        MatObject(
            "vision.cnn.layer.BoundingBoxRegressionOutputLayer",
            {"PrivateLayer": {"Name": ""}, "Version": M.d(1)},
        ),
    ]
    network = {
        "Layers": cls_layers,
        "RegLayers": reg_layers,
        "BranchLayerIdx": M.d(branch),
        "Version": M.d(1),
    }
    return MatObject(
        "fasterRCNNObjectDetector",
        {"ModelName": "car", "Network": network, "RegionProposalNetwork": network},
    )


def test_detector_networks_saved_as_structs_convert_one_at_a_time(
    tmp_path: Path,
) -> None:
    """fasterRCNNObjectDetector with struct networks: each is a chain plus a
    box-regression chain branching off after layer BranchLayerIdx."""
    text = refused(tmp_path, {"detector": _detector()})
    assert "holds 2 networks" in text and "--var detector.Network" in text
    mat = tmp_path / "net.mat"
    result = convert(mat, tmp_path / "out", var="detector.Network")
    outs = [o.port.layer for o in result.network.outputs]
    assert outs == ["out", "bounding_box_regression_output_1"]
    assert "self.fc_reg(relu_2)" in result.code  # layer 5 of Layers
    assert verify(mat, tmp_path / "out", var="detector.Network").ok
    shutil.rmtree(tmp_path / "out")
    text = refused(tmp_path, var="detector.Nope")
    assert "no field 'Nope'" in text and "RegionProposalNetwork" in text


@pytest.mark.parametrize("branch", [0.0, 9.0, 2.5, np.nan])
def test_detector_branch_index_outside_the_network(tmp_path: Path, branch: Any) -> None:
    text = refused(tmp_path, {"detector": _detector(branch)}, var="detector.Network")
    assert "BranchLayerIdx" in text and "damaged" in text


def test_detector_without_a_readable_network(tmp_path: Path) -> None:
    detector = MatObject("fasterRCNNObjectDetector", {"Network": M.d(3.0)})
    text = refused(tmp_path, {"detector": detector})
    assert "variable 'detector'" in text and "neither a network object" in text


# --------------------------------------------------------------------------
# the overlapped read (big files: scan inflating beside mat-io)


def _damaged(tmp_path: Path, kind: str) -> None:
    """net.mat damaged as one of the reader tests above damages it."""
    if kind in ("crash", "declared size"):
        write_mat(tmp_path / "full.mat", two_input_two_output())
        seeds = {
            "crash": (1095513148, 506456969, 2127877499),
            "declared size": (3361672518, 580435377, 1456404716),
        }[kind]
        data = fuzz_bytes.inner((tmp_path / "full.mat").read_bytes(), *seeds)
    else:
        write_mat(tmp_path / "full.mat", {"net": small_net()})
        data = bytearray((tmp_path / "full.mat").read_bytes())
        if kind == "stream":
            data[128 + 8 + 40 : 128 + 8 + 80] = bytes(40)
        elif kind == "stream end":
            data[-12:-4] = bytes(8)  # inside the last element's zlib stream
        else:
            data = data[:-5]
    (tmp_path / "net.mat").write_bytes(bytes(data))


def _spy_runs(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record the ``overlap`` flag of every child the reader starts."""
    runs: list[bool] = []
    real = untrusted._run_child

    def spy(*args: Any, overlap: bool) -> Any:
        runs.append(overlap)
        return real(*args, overlap=overlap)

    monkeypatch.setattr(untrusted, "_run_child", spy)
    return runs


@pytest.mark.parametrize(
    "kind", ["crash", "declared size", "stream", "stream end", "truncated"]
)
def test_overlapped_read_refuses_as_the_careful_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    _damaged(tmp_path, kind)
    careful = refused(tmp_path)
    monkeypatch.setattr(untrusted, "OVERLAP_BYTES", 0)
    runs = _spy_runs(monkeypatch)
    assert refused(tmp_path) == careful
    assert runs[0] is True


def test_overlapped_read_of_a_sound_file_reads_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_mat(tmp_path / "net.mat", {"net": small_net()})
    expected = convert(tmp_path / "net.mat", None, check=False)
    monkeypatch.setattr(untrusted, "OVERLAP_BYTES", 0)
    runs = _spy_runs(monkeypatch)
    got = convert(tmp_path / "net.mat", None, check=False)
    assert runs == [True]
    assert got.code == expected.code and got.weights == expected.weights


def test_overlapped_read_retries_when_the_estimate_is_too_low(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Zeros compress a thousandfold: the estimate from the file size is far
    too low, mat-io runs out of memory, and the careful read (which knows the
    inflated size) succeeds."""
    zeros = np.zeros((40, 1000, 1000), np.float32)  # 160 MB, ~160 kB on disk
    write_mat(tmp_path / "z.mat", {"z": zeros})
    monkeypatch.setattr(untrusted, "OVERLAP_BYTES", 0)
    monkeypatch.setattr(untrusted, "MEMORY_FIXED", 64 << 20)
    runs = _spy_runs(monkeypatch)
    from codegen.matfile import load_variables

    got = load_variables(tmp_path / "z.mat", ["z"])["z"]
    assert runs == [True, False]
    assert got.shape == zeros.shape and not got.any()


@pytest.mark.parametrize("where", [0, 5])
def test_nan_weights_are_named_in_the_notes(tmp_path: Path, where: int) -> None:
    """NaN learnables are copied as they are and named; finite ones are not."""
    w = np.ones((2, 3), np.float32)
    w.flat[where] = np.nan
    layers = [
        M.feature_input("in", 3),
        fc("fc_nan", 2, 3, Weights=w),
        fc("fc_ok", 2, 2),
        M.regression("out"),
    ]
    write_mat(tmp_path / "net.mat", chain(*layers))
    result = convert(tmp_path / "net.mat", None)
    named = [n for n in result.notes if "NaN weights" in n]
    assert named == ["The .mat file holds NaN weights for fc_nan; copied as they are."]
