"""The released training helpers (coursekit.data and coursekit.training) and the committed weights.

The weights in course/source/cnn_rnn/weights/ come from course/make_weights.py, trained with the
reference layers of solutions/. These tests load them back, recompute the accuracies they claim,
and check that the data generators, the given layers and the training loop are deterministic and
correct.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest

import solutions

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT_DIR = REPO_ROOT / "course" / "source" / "cnn_rnn"
WEIGHTS_DIR = ASSIGNMENT_DIR / "weights"
WEIGHT_FILES = ("cnn_digits.npz", "lstm_recall.npz", "rnn_recall.npz")
MAKE_WEIGHTS = REPO_ROOT / "course" / "make_weights.py"

# The notebooks import coursekit from the folder they sit in, so the tests do the same.
if str(ASSIGNMENT_DIR) not in sys.path:
    sys.path.insert(0, str(ASSIGNMENT_DIR))

from coursekit import data, training  # noqa: E402

MAX_WEIGHTS_BYTES = 2 * 1024 * 1024
MIN_CNN_ACCURACY = 0.90
# "Clearly better": on the recall task chance is 1 / n_symbols, and the LSTM must lead by this much.
MIN_LSTM_MARGIN = 0.30
# Recomputed accuracies may differ from the recorded ones by a few test examples on another BLAS.
ACCURACY_SLACK = 0.005


def central_difference(loss, array: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Estimate d loss() / d array entry by entry, changing array in place and restoring it."""
    gradient = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + h
        loss_plus = loss()
        array[index] = original - h
        loss_minus = loss()
        array[index] = original
        gradient[index] = (loss_plus - loss_minus) / (2 * h)
    return gradient


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(1e-12, np.max(np.abs(a) + np.abs(b))))


def answer_namespace(notebook: str, grade_ids: list[str]) -> dict:
    """Run the model-answer cells of a source notebook and return the classes they define.

    These are the student API as the notebooks teach it (naive loops, the given forward wrappers),
    written independently of solutions/.
    """
    cells = {
        cell.metadata.get("nbgrader", {}).get("grade_id"): cell.source
        for cell in nbformat.read(ASSIGNMENT_DIR / f"{notebook}.ipynb", as_version=4).cells
    }
    namespace = {"np": np, "__name__": f"{notebook}_answers"}
    for grade_id in grade_ids:
        assert grade_id in cells, f"{notebook}.ipynb has no cell with grade_id {grade_id}"
        exec(compile(cells[grade_id], f"{notebook}:{grade_id}", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def digits_test_split():
    """The test split that the committed CNN was evaluated on, and the loaded reference model."""
    model = training.load_trained_cnn(solutions.Conv2D, solutions.MaxPool2D)
    info = model.info
    _, _, X_test, y_test = data.load_digits(info["n_train"], info["n_test"], info["data_seed"])
    return model, X_test, y_test


@pytest.fixture(scope="module")
def recall_test_split():
    lstm = training.load_trained_lstm(solutions.LSTM)
    rnn = training.load_trained_rnn(solutions.RNNCell)
    info = lstm.info
    inputs, labels = data.make_recall_task(info["n_test"], info["T"], info["n_symbols"], info["test_seed"])
    return lstm, rnn, inputs, labels


# ---------------------------------------------------------------------------------------------
# Committed weights


def test_weight_files_exist():
    for name in WEIGHT_FILES:
        assert (WEIGHTS_DIR / name).is_file(), f"{name} is missing from {WEIGHTS_DIR}: run `make weights`"


def test_weight_files_under_2_mb():
    total = sum((WEIGHTS_DIR / name).stat().st_size for name in WEIGHT_FILES)
    assert total < MAX_WEIGHTS_BYTES, f"the weight files take {total} bytes, more than {MAX_WEIGHTS_BYTES}"


def test_weight_files_contain_no_pickles():
    for name in WEIGHT_FILES:
        with np.load(WEIGHTS_DIR / name, allow_pickle=False) as archive:
            for key in archive.files:
                assert archive[key].dtype != object, f"{name}: {key} is an object array"


def test_cnn_weights_reach_claimed_accuracy(digits_test_split):
    model, X_test, y_test = digits_test_split

    accuracy = training.accuracy(model, X_test, y_test)

    assert accuracy >= MIN_CNN_ACCURACY, f"the committed CNN reaches {accuracy:.1%} on the test digits"
    assert abs(accuracy - model.info["test_accuracy"]) <= ACCURACY_SLACK, \
        f"recomputed {accuracy:.3f}, but cnn_digits.npz records {model.info['test_accuracy']:.3f}"


def test_lstm_weights_beat_rnn_on_recall_task(recall_test_split):
    lstm, rnn, inputs, labels = recall_test_split
    assert lstm.config()["hidden_size"] == rnn.config()["hidden_size"]
    assert rnn.info["T"] == lstm.info["T"]
    assert rnn.info["test_seed"] == lstm.info["test_seed"]

    lstm_accuracy = training.accuracy(lstm, inputs, labels)
    rnn_accuracy = training.accuracy(rnn, inputs, labels)

    assert lstm_accuracy - rnn_accuracy >= MIN_LSTM_MARGIN, \
        f"LSTM {lstm_accuracy:.1%} against RNN {rnn_accuracy:.1%} on the recall task"
    assert abs(lstm_accuracy - lstm.info["test_accuracy"]) <= ACCURACY_SLACK
    assert abs(rnn_accuracy - rnn.info["test_accuracy"]) <= ACCURACY_SLACK


def test_weights_load_into_notebook_conv_classes(digits_test_split):
    reference_model, X_test, _ = digits_test_split
    answers = answer_namespace(
        "conv_pool", ["conv2d_answer", "maxpool2d_answer", "conv2d_backward_answer", "maxpool2d_backward_answer"]
    )
    images = X_test[:100]

    model = training.load_trained_cnn(answers["Conv2D"], answers["MaxPool2D"])

    np.testing.assert_allclose(model.forward(images), reference_model.forward(images), rtol=1e-9, atol=1e-9)


def test_weights_load_into_notebook_recurrent_classes(recall_test_split):
    reference_lstm, reference_rnn, inputs, _ = recall_test_split
    answers = answer_namespace(
        "rnn_lstm",
        ["rnn_answer", "lstm_cell_answer", "lstm_answer", "rnn_backward_answer", "lstm_cell_backward_answer",
         "lstm_backward_answer"],
    )
    sequences = inputs[:, :100]

    lstm = training.load_trained_lstm(answers["LSTM"])
    rnn = training.load_trained_rnn(answers["RNNCell"])

    np.testing.assert_allclose(lstm.forward(sequences), reference_lstm.forward(sequences), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(rnn.forward(sequences), reference_rnn.forward(sequences), rtol=1e-9, atol=1e-9)


def test_loader_rejects_layer_of_wrong_shape():
    class WideConv2D(solutions.Conv2D):
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
            super().__init__(in_channels, out_channels + 1, kernel_size, stride, padding)

    with pytest.raises(ValueError, match="filters has shape"):
        training.load_trained_cnn(WideConv2D, solutions.MaxPool2D)


def test_loader_reports_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no weights file"):
        training.load_trained_lstm(solutions.LSTM, tmp_path / "absent.npz")


@pytest.mark.timeout(300)
def test_make_weights_reproduces_committed_bytes(tmp_path):
    # NOTE: the committed files were written on an x86-64 Linux machine with numpy 2.4.6, with
    # OpenBLAS's Haswell kernels and numpy's AVX-512 loops turned off by make_weights.py. Other
    # x86-64 machines should then match; an ARM machine rounds differently.
    result = subprocess.run(
        [sys.executable, str(MAKE_WEIGHTS), "--output", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr

    for name in WEIGHT_FILES:
        assert (tmp_path / name).read_bytes() == (WEIGHTS_DIR / name).read_bytes(), \
            f"{name} differs from the committed file: run `make weights` and commit the result"


# ---------------------------------------------------------------------------------------------
# Data generators


def test_digits_use_every_bundled_font():
    assert [path.name for path in data.available_fonts()] == list(data.DIGIT_FONTS)


def test_load_digits_shapes_and_range():
    X_train, y_train, X_test, y_test = data.load_digits(30, 20, seed=3)

    assert X_train.shape == (30, 1, 16, 16)
    assert X_test.shape == (20, 1, 16, 16)
    assert X_train.dtype == np.float64
    assert y_train.shape == (30,)
    assert y_test.shape == (20,)
    assert X_train.min() >= 0.0
    assert X_train.max() <= 1.0
    assert set(np.unique(y_train)) <= set(range(10))


def test_load_digits_is_deterministic():
    first = data.load_digits(40, 20, seed=5)
    second = data.load_digits(40, 20, seed=5)
    other_seed = data.load_digits(40, 20, seed=6)

    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other_seed[0])


def test_load_digits_train_split_ignores_n_test():
    X_small, y_small, _, _ = data.load_digits(40, 5, seed=5)
    X_large, y_large, _, _ = data.load_digits(40, 50, seed=5)

    np.testing.assert_array_equal(X_small, X_large)
    np.testing.assert_array_equal(y_small, y_large)


def test_load_digits_labels_balanced():
    _, y_train, _, y_test = data.load_digits(1003, 57, seed=0)

    for labels in (y_train, y_test):
        counts = np.bincount(labels, minlength=10)
        assert counts.max() - counts.min() <= 1, f"class counts {counts.tolist()}"


def test_load_digits_images_differ_within_class():
    X_train, y_train, _, _ = data.load_digits(200, 0, seed=0)
    sevens = X_train[y_train == 7]

    assert len(sevens) == 20
    assert len({image.tobytes() for image in sevens}) == len(sevens)


def test_load_digits_rejects_invalid_sizes():
    with pytest.raises(ValueError, match="n_train"):
        data.load_digits(-1, 10)
    with pytest.raises(ValueError, match="n_test"):
        data.load_digits(10, 2.5)


def test_load_digits_empty_split():
    X_train, y_train, X_test, y_test = data.load_digits(0, 3, seed=0)

    assert X_train.shape == (0, 1, 16, 16)
    assert y_train.shape == (0,)
    assert X_test.shape == (3, 1, 16, 16)


def test_recall_task_shapes_and_labels():
    inputs, labels = data.make_recall_task(50, T=7, n_symbols=5, seed=1)

    assert inputs.shape == (7, 50, 5)
    assert inputs.dtype == np.float64
    assert labels.shape == (50,)
    np.testing.assert_array_equal(inputs.sum(axis=2), np.ones((7, 50)))
    np.testing.assert_array_equal(inputs[0].argmax(axis=1), labels)


def test_recall_task_has_distractors():
    inputs, labels = data.make_recall_task(200, T=10, n_symbols=4, seed=1)
    later_symbols = inputs[1:].argmax(axis=2)

    # Distractors are drawn independently of the label, so most differ from it.
    assert np.mean(later_symbols == labels) < 0.5
    assert set(np.unique(later_symbols)) == set(range(4))


def test_recall_task_is_deterministic():
    first = data.make_recall_task(30, 6, 4, seed=9)
    second = data.make_recall_task(30, 6, 4, seed=9)
    other_seed = data.make_recall_task(30, 6, 4, seed=10)

    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other_seed[0])


def test_recall_task_labels_balanced():
    _, labels = data.make_recall_task(803, 3, n_symbols=8, seed=0)

    counts = np.bincount(labels, minlength=8)
    assert counts.max() - counts.min() <= 1, f"symbol counts {counts.tolist()}"


def test_recall_task_single_step():
    inputs, labels = data.make_recall_task(10, T=1, n_symbols=3, seed=0)

    assert inputs.shape == (1, 10, 3)
    np.testing.assert_array_equal(inputs[0].argmax(axis=1), labels)


def test_recall_task_rejects_invalid_arguments():
    with pytest.raises(ValueError, match="T must be"):
        data.make_recall_task(10, T=0)
    with pytest.raises(ValueError, match="n_symbols"):
        data.make_recall_task(10, T=5, n_symbols=1)
    with pytest.raises(ValueError, match="n must be"):
        data.make_recall_task(-3, T=5)


# ---------------------------------------------------------------------------------------------
# Given layers: gradients against central differences


def test_relu_backward_matches_numerical_gradient():
    rng = np.random.default_rng(0)
    # Keep every input at least 0.1 away from the kink at 0, where the derivative jumps.
    X = rng.uniform(0.1, 1.0, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))
    dout = rng.standard_normal((3, 4))
    relu = training.ReLU()

    numeric = central_difference(lambda: float(np.sum(relu.forward(X) * dout)), X)
    relu.forward(X)
    analytic = relu.backward(dout)

    assert relative_error(analytic, numeric) < 1e-8


def test_affine_backward_matches_numerical_gradient():
    rng = np.random.default_rng(1)
    affine = training.Affine(12, 5, rng)
    affine.b = rng.standard_normal(5)
    X = rng.standard_normal((4, 3, 2, 2))  # flattened to (4, 12) by forward
    dout = rng.standard_normal((4, 5))

    def loss() -> float:
        return float(np.sum(affine.forward(X) * dout))

    numeric = {name: central_difference(loss, array) for name, array in (("X", X), ("W", affine.W), ("b", affine.b))}
    affine.forward(X)
    dX = affine.backward(dout)

    assert dX.shape == X.shape
    assert relative_error(dX, numeric["X"]) < 1e-8
    assert relative_error(affine.dW, numeric["W"]) < 1e-8
    assert relative_error(affine.db, numeric["b"]) < 1e-8


def test_softmax_cross_entropy_gradient_matches_numerical():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2])
    loss_function = training.SoftmaxCrossEntropy()

    numeric = central_difference(lambda: loss_function.forward(logits, labels), logits)
    loss_function.forward(logits, labels)
    analytic = loss_function.backward()

    assert relative_error(analytic, numeric) < 1e-7


def test_softmax_cross_entropy_value():
    loss_function = training.SoftmaxCrossEntropy()
    logits = np.zeros((2, 4))

    assert loss_function.forward(logits, np.array([0, 3])) == pytest.approx(np.log(4))


def test_softmax_cross_entropy_large_logits_stay_finite():
    loss_function = training.SoftmaxCrossEntropy()
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 2000.0, 0.0]])

    loss = loss_function.forward(logits, np.array([2, 1]))

    assert loss == pytest.approx(1000.0)
    assert np.all(np.isfinite(loss_function.backward()))


def test_softmax_cross_entropy_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="labels"):
        training.SoftmaxCrossEntropy().forward(np.zeros((3, 2)), np.zeros(4, dtype=int))


def model_gradients_match(model, inputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Return, per parameter, the relative error between model.backward and central differences."""
    loss_function = training.SoftmaxCrossEntropy()

    def loss() -> float:
        return loss_function.forward(model.forward(inputs), labels)

    numeric = {name: central_difference(loss, getattr(owner, attribute))
               for name, (owner, attribute) in zip(model.parameter_names(), model.parameters())}
    loss()
    model.backward(loss_function.backward())
    return {name: relative_error(training.gradient_of(parameter), numeric[name])
            for name, parameter in zip(model.parameter_names(), model.parameters())}


def test_small_cnn_gradient_matches_numerical():
    rng = np.random.default_rng(3)
    model = training.SmallCNN(solutions.Conv2D, solutions.MaxPool2D, image_size=6, n_filters=2, seed=1)
    images = rng.uniform(0, 1, (3, 1, 6, 6))

    errors = model_gradients_match(model, images, np.array([1, 4, 9]))

    assert all(error < 1e-6 for error in errors.values()), errors


def test_lstm_classifier_gradient_matches_numerical():
    inputs, labels = data.make_recall_task(4, T=5, n_symbols=3, seed=0)
    model = training.LSTMClassifier(solutions.LSTM, input_size=3, hidden_size=4, n_classes=3, seed=2)

    errors = model_gradients_match(model, inputs, labels)

    assert all(error < 1e-6 for error in errors.values()), errors


def test_rnn_classifier_gradient_matches_numerical():
    inputs, labels = data.make_recall_task(4, T=5, n_symbols=3, seed=0)
    model = training.RNNClassifier(solutions.RNNCell, input_size=3, hidden_size=4, n_classes=3, seed=2)

    errors = model_gradients_match(model, inputs, labels)

    assert all(error < 1e-6 for error in errors.values()), errors


# ---------------------------------------------------------------------------------------------
# Optimizers


class OneParameter:
    def __init__(self, value: np.ndarray, gradient: np.ndarray) -> None:
        self.W = value
        self.dW = gradient


def test_sgd_step_without_momentum():
    layer = OneParameter(np.array([1.0, -2.0]), np.array([0.5, 1.0]))

    training.SGD(lr=0.1).step([(layer, "W")])

    np.testing.assert_allclose(layer.W, [0.95, -2.1])


def test_sgd_momentum_accumulates_velocity():
    layer = OneParameter(np.array([0.0]), np.array([1.0]))
    optimizer = training.SGD(lr=0.1, momentum=0.9)

    optimizer.step([(layer, "W")])
    optimizer.step([(layer, "W")])

    # Steps of 0.1, then 0.9 * 0.1 + 0.1.
    np.testing.assert_allclose(layer.W, [-0.29])


def test_adam_first_step_has_size_lr():
    layer = OneParameter(np.array([1.0, 1.0, 1.0]), np.array([1e-3, -5.0, 20.0]))

    training.Adam(lr=0.01).step([(layer, "W")])

    np.testing.assert_allclose(layer.W, [0.99, 1.01, 0.99], rtol=1e-6)


def test_clip_gradients_scales_global_norm():
    first = OneParameter(np.zeros(2), np.array([3.0, 0.0]))
    second = OneParameter(np.zeros(1), np.array([4.0]))

    norm = training.clip_gradients([(first, "W"), (second, "W")], max_norm=1.0)

    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(first.dW, [0.6, 0.0])
    np.testing.assert_allclose(second.dW, [0.8])


def test_optimizer_reports_missing_gradient():
    layer = OneParameter(np.zeros(2), None)

    with pytest.raises(AttributeError, match="no gradient dW"):
        training.Adam().step([(layer, "W")])


def test_optimizer_rejects_gradient_of_wrong_shape():
    layer = OneParameter(np.zeros(2), np.zeros(3))

    with pytest.raises(ValueError, match="dW has shape"):
        training.SGD().step([(layer, "W")])


# ---------------------------------------------------------------------------------------------
# Training loop, saving, plotting


def short_cnn_run(global_seed: int):
    # The layer constructors draw from np.random, and the model must not depend on that state.
    np.random.seed(global_seed)
    X_train, y_train, X_test, y_test = data.load_digits(120, 40, seed=4)
    model = training.SmallCNN(solutions.Conv2D, solutions.MaxPool2D, seed=7)
    history = training.train(model, X_train, y_train, X_test, y_test, epochs=2, batch_size=40,
                             optimizer=training.Adam(3e-3), seed=8, log=None)
    return history, model.state()


def short_recurrent_run(global_seed: int, classifier: str):
    np.random.seed(global_seed)
    inputs_train, labels_train = data.make_recall_task(96, T=6, n_symbols=4, seed=1)
    inputs_test, labels_test = data.make_recall_task(32, T=6, n_symbols=4, seed=2)
    if classifier == "lstm":
        model = training.LSTMClassifier(solutions.LSTM, 4, 8, 4, seed=3)
    else:
        model = training.RNNClassifier(solutions.RNNCell, 4, 8, 4, seed=3)
    history = training.train(model, inputs_train, labels_train, inputs_test, labels_test, epochs=2, batch_size=32,
                             optimizer=training.SGD(0.1, momentum=0.9), max_grad_norm=1.0, seed=5, log=None)
    return history, model.state()


def assert_runs_identical(first, second) -> None:
    (history_a, state_a), (history_b, state_b) = first, second
    for key in ("loss", "train_accuracy", "test_accuracy"):
        assert history_a[key] == history_b[key], f"{key} differs between two identical runs"
    assert list(state_a) == list(state_b)
    for name in state_a:
        np.testing.assert_array_equal(state_a[name], state_b[name], err_msg=name)


def test_short_cnn_training_is_deterministic():
    assert_runs_identical(short_cnn_run(global_seed=1), short_cnn_run(global_seed=2))


@pytest.mark.parametrize("classifier", ["lstm", "rnn"])
def test_short_recurrent_training_is_deterministic(classifier):
    assert_runs_identical(short_recurrent_run(1, classifier), short_recurrent_run(2, classifier))


def test_training_lowers_the_loss():
    history, _ = short_cnn_run(global_seed=0)

    assert len(history["loss"]) == 2
    assert history["loss"][1] < history["loss"][0]
    assert all(0.0 <= value <= 1.0 for value in history["train_accuracy"] + history["test_accuracy"])


def test_train_logs_one_line_per_epoch():
    inputs, labels = data.make_recall_task(16, T=3, n_symbols=2, seed=0)
    model = training.RNNClassifier(solutions.RNNCell, 2, 3, 2)
    lines = []

    training.train(model, inputs, labels, inputs, labels, epochs=3, batch_size=8, log=lines.append)

    assert len(lines) == 3
    assert lines[0].startswith("epoch 1/3: loss ")


def test_train_rejects_label_count_mismatch():
    inputs, labels = data.make_recall_task(16, T=3, n_symbols=2, seed=0)
    model = training.RNNClassifier(solutions.RNNCell, 2, 3, 2)

    with pytest.raises(ValueError, match="16 training inputs along axis 1 but 15 labels"):
        training.train(model, inputs, labels[:15], inputs, labels, epochs=1, log=None)


def test_lstm_forward_without_backward_keeps_cache_bounded():
    inputs, _ = data.make_recall_task(8, T=5, n_symbols=3, seed=0)
    model = training.LSTMClassifier(solutions.LSTM, 3, 4, 3)

    for _ in range(3):
        model.forward(inputs)

    assert len(model.cell.cache) == 5


def test_write_npz_is_byte_reproducible(tmp_path, monkeypatch):
    arrays = {"b": np.arange(6.0).reshape(2, 3), "a": np.array([1, 2], dtype=np.int64), "rate": 0.5}

    training.write_npz(tmp_path / "first.npz", arrays)
    # A writer that stamps members with the current time would now write other bytes.
    later = time.time() + 86400
    monkeypatch.setattr(time, "time", lambda: later)
    training.write_npz(tmp_path / "second.npz", arrays)

    assert (tmp_path / "first.npz").read_bytes() == (tmp_path / "second.npz").read_bytes()
    with np.load(tmp_path / "first.npz", allow_pickle=False) as archive:
        assert archive.files == ["b", "a", "rate"]
        np.testing.assert_array_equal(archive["b"], arrays["b"])


def test_save_and_load_round_trip(tmp_path):
    model = training.SmallCNN(solutions.Conv2D, solutions.MaxPool2D, n_filters=3, seed=5)
    path = tmp_path / "cnn.npz"

    training.save_model(path, model, {"data_seed": 1, "test_accuracy": 0.5})
    loaded = training.load_trained_cnn(solutions.Conv2D, solutions.MaxPool2D, path)

    assert loaded.config() == model.config()
    assert loaded.info == {"data_seed": 1, "test_accuracy": 0.5}
    for name, value in model.state().items():
        np.testing.assert_array_equal(loaded.state()[name], value, err_msg=name)


def test_plot_history_single_and_named():
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    history = {"loss": [1.0, 0.5], "train_accuracy": [0.5, 0.8], "test_accuracy": [0.4, 0.7], "seconds": [1, 1]}

    single = training.plot_history(history)
    named = training.plot_history({"LSTM": history, "RNN": history})

    assert len(single.axes) == 2
    assert len(single.axes[1].lines) == 2
    assert len(named.axes[1].lines) == 4
    plt.close("all")


def test_released_helpers_do_not_import_solutions():
    for path in sorted((ASSIGNMENT_DIR / "coursekit").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not [name for name in imported if name.split(".")[0] in {"solutions", "autograder"}], \
            f"{path.name} imports a package that is not released to students"
