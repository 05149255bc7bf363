"""selfAttentionLayer against MATLAB's own recorded predictions.

transformer_demo.mat (MathWorks' transformer-networks-for-time-series-
prediction, a DAGNetwork saved by R2023b) holds the network and the stock
prices it was trained on; MANIFEST.json quotes the RMSEs MATLAB printed for
predict() on the training and test windows. The generated model must give
the same six numbers to the four printed digits, which it does only without
the first layer's causal mask.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from conftest import FIXTURES, require_fixtures

from codegen.matfile import load_variables
from codegen.pipeline import convert
from codegen.verify import load_generated

FILE = "matlab-deep-learning__transformer-networks-for-time-series-prediction__transformer_demo.mat"
WINDOW = 30
# Test rows: the demo takes the rows of the last three years; the reader does
# not decode the timetable's dates, so the count was found by scanning 500..900
# without the mask (only 686 reproduces all six digits; 685 and 687 do not).
N_TEST = 686


def matlab_rmse() -> tuple[np.ndarray, np.ndarray]:
    entries = json.loads((FIXTURES / "real" / "MANIFEST.json").read_text())
    notes = next(e["notes"] for e in entries if e["file"] == FILE)
    train, test = (
        np.array(re.search(rf"{k}=\[([^\]]+)\]", notes).group(1).split(), float)
        for k in ("RMSE_Train", "RMSE_Test")
    )
    return train, test


def rmse(model, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The demo's preprocessing: z-score with the training rows' population
    std, windows of 30 steps, response = the next row, de-normalised."""
    n_train = len(data) - N_TEST
    mu, sd = data[:n_train].mean(0), data[:n_train].std(0)
    x = (data - mu) / sd
    idx = np.arange(len(data) - WINDOW)[:, None] + np.arange(WINDOW)[None, :]
    with torch.no_grad():
        y = model(torch.from_numpy(x[idx].astype(np.float32))).double().numpy()
    err = y * sd + mu - data[WINDOW:]
    split = len(err) - N_TEST
    return np.sqrt((err[:split] ** 2).mean(0)), np.sqrt((err[split:] ** 2).mean(0))


def test_transformer_matches_matlab_predictions(tmp_path: Path) -> None:
    require_fixtures()
    path = FIXTURES / "real" / FILE
    convert(path, tmp_path)
    model = load_generated(tmp_path).load_model()
    table = load_variables(path, ["data"])["data"]
    data = np.array([table[k] for k in ("Stock A", "Stock B", "Stock C")], float).T
    want_train, want_test = matlab_rmse()

    train, test = rmse(model, data)
    np.testing.assert_allclose(train, want_train, atol=6e-5)
    np.testing.assert_allclose(test, want_test, atol=6e-5)

    # The documented causal mask does not reproduce MATLAB's numbers.
    assert not model.selfattention_1.causal
    model.selfattention_1.causal = True
    train, test = rmse(model, data)
    assert np.abs(np.r_[train - want_train, test - want_test]).max() > 0.05
