"""Train the week's small models with the reference layers and write their weights for the notebooks.

Writes, into course/source/cnn_rnn/weights/ (or --output):
  cnn_digits.npz   SmallCNN on the rendered digits; it must reach MIN_CNN_ACCURACY on the test split.
  lstm_recall.npz  LSTMClassifier on the recall task (remember the first of T symbols).
  rnn_recall.npz   RNNClassifier of the same hidden size on the same task, for the comparison.
                   The LSTM must beat it by at least MIN_LSTM_MARGIN in test accuracy.

Run it with `make weights`. The run is deterministic: every random number comes from a seeded
Generator and the .npz files carry fixed time stamps, so two runs on one machine write the same
bytes. BLAS is limited to one thread, because a multi-threaded matrix product may sum in a
different order on a machine with another number of cores.
"""

from __future__ import annotations

import os
import platform

AVX512_FEATURES = "X86_V4 AVX512_ICL AVX512_SPR"  # numpy 2.4's AVX-512 dispatch targets

# Before numpy is imported, so that OpenBLAS (and MKL or OpenMP, if numpy uses them) start with one thread.
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"
if platform.machine().lower() in ("x86_64", "amd64"):
    # The same instructions on every x86-64 machine with AVX2: OpenBLAS's Haswell kernels, and
    # numpy's loops without AVX-512, which round some products and exp() differently.
    os.environ["OPENBLAS_CORETYPE"] = "Haswell"
    os.environ["NPY_DISABLE_CPU_FEATURES"] = AVX512_FEATURES

import argparse
import sys
import time
from pathlib import Path

COURSE_DIR = Path(__file__).resolve().parent
REPO_ROOT = COURSE_DIR.parent
ASSIGNMENT_DIR = COURSE_DIR / "source" / "cnn_rnn"
sys.path[:0] = [str(REPO_ROOT), str(ASSIGNMENT_DIR)]

import solutions  # noqa: E402  (the path above must be set first)
from coursekit import data, training  # noqa: E402

MIN_CNN_ACCURACY = 0.90
MIN_LSTM_MARGIN = 0.30

CNN_SETTINGS = dict(n_filters=8, kernel_size=3, padding=1, pool_size=2, seed=0)
DIGITS = dict(n_train=6000, n_test=1000, seed=0)
CNN_TRAINING = dict(epochs=10, batch_size=32, learning_rate=2e-3, seed=0)

# T = 20 separates the two. In trial runs with these settings the vanilla RNN learned the task at
# T = 10 but stayed near 25 % (chance is 12.5 %) at T = 20, while the LSTM reached 100 %.
RECALL_TASK = dict(T=20, n_symbols=8, n_train=4000, n_test=1000, train_seed=1, test_seed=2)
RECURRENT_SETTINGS = dict(hidden_size=32, seed=0)
RECURRENT_TRAINING = dict(epochs=10, batch_size=32, learning_rate=2e-3, max_grad_norm=5.0, seed=0)


def train_cnn(output: Path) -> float:
    """Train the SmallCNN on the digits, write cnn_digits.npz and return its test accuracy."""
    start = time.perf_counter()
    X_train, y_train, X_test, y_test = data.load_digits(**DIGITS)
    print(f"Rendered {len(y_train)} training and {len(y_test)} test digits in {time.perf_counter() - start:.1f} s")

    model = training.SmallCNN(solutions.Conv2D, solutions.MaxPool2D, **CNN_SETTINGS)
    history = training.train(
        model, X_train, y_train, X_test, y_test,
        epochs=CNN_TRAINING["epochs"], batch_size=CNN_TRAINING["batch_size"],
        optimizer=training.Adam(CNN_TRAINING["learning_rate"]), seed=CNN_TRAINING["seed"],
    )
    test_accuracy = history["test_accuracy"][-1]

    info = {
        "data_seed": DIGITS["seed"], "n_train": DIGITS["n_train"], "n_test": DIGITS["n_test"],
        "epochs": CNN_TRAINING["epochs"], "batch_size": CNN_TRAINING["batch_size"],
        "learning_rate": CNN_TRAINING["learning_rate"], "test_accuracy": test_accuracy,
    }
    training.save_model(output / "cnn_digits.npz", model, info)
    print(f"CNN: test accuracy {test_accuracy:.1%}, trained in {sum(history['seconds']):.1f} s")
    return test_accuracy


def train_recurrent(output: Path) -> tuple[float, float]:
    """Train the LSTM and the vanilla RNN classifiers on the recall task and return their test accuracies."""
    task = RECALL_TASK
    inputs_train, labels_train = data.make_recall_task(task["n_train"], task["T"], task["n_symbols"], task["train_seed"])
    inputs_test, labels_test = data.make_recall_task(task["n_test"], task["T"], task["n_symbols"], task["test_seed"])

    models = {
        "LSTM": (training.LSTMClassifier(solutions.LSTM, task["n_symbols"], n_classes=task["n_symbols"],
                                         **RECURRENT_SETTINGS), "lstm_recall.npz"),
        "RNN": (training.RNNClassifier(solutions.RNNCell, task["n_symbols"], n_classes=task["n_symbols"],
                                       **RECURRENT_SETTINGS), "rnn_recall.npz"),
    }
    accuracies = {}
    for name, (model, file_name) in models.items():
        print(f"{name} on the recall task, T = {task['T']}, {task['n_symbols']} symbols:")
        history = training.train(
            model, inputs_train, labels_train, inputs_test, labels_test,
            epochs=RECURRENT_TRAINING["epochs"], batch_size=RECURRENT_TRAINING["batch_size"],
            optimizer=training.Adam(RECURRENT_TRAINING["learning_rate"]),
            max_grad_norm=RECURRENT_TRAINING["max_grad_norm"], seed=RECURRENT_TRAINING["seed"],
        )
        accuracies[name] = history["test_accuracy"][-1]

        info = dict(task)
        info.update(epochs=RECURRENT_TRAINING["epochs"], batch_size=RECURRENT_TRAINING["batch_size"],
                    learning_rate=RECURRENT_TRAINING["learning_rate"], test_accuracy=accuracies[name])
        training.save_model(output / file_name, model, info)
        print(f"{name}: test accuracy {accuracies[name]:.1%}, trained in {sum(history['seconds']):.1f} s")

    return accuracies["LSTM"], accuracies["RNN"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ASSIGNMENT_DIR / "weights",
                        help="folder for the .npz files (default: %(default)s)")
    arguments = parser.parse_args(argv)
    arguments.output.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    cnn_accuracy = train_cnn(arguments.output)
    lstm_accuracy, rnn_accuracy = train_recurrent(arguments.output)

    sizes = {path.name: path.stat().st_size for path in sorted(arguments.output.glob("*.npz"))}
    print("Wrote " + ", ".join(f"{name} ({size / 1024:.0f} KiB)" for name, size in sizes.items())
          + f" to {arguments.output} in {time.perf_counter() - start:.1f} s")
    print(f"Test accuracy: CNN {cnn_accuracy:.1%}; recall task: LSTM {lstm_accuracy:.1%}, RNN {rnn_accuracy:.1%}")

    failures = []
    if cnn_accuracy < MIN_CNN_ACCURACY:
        failures.append(f"the CNN reached {cnn_accuracy:.1%}, below the required {MIN_CNN_ACCURACY:.0%}")
    if lstm_accuracy - rnn_accuracy < MIN_LSTM_MARGIN:
        failures.append(f"the LSTM ({lstm_accuracy:.1%}) beats the RNN ({rnn_accuracy:.1%}) by less than "
                        f"{MIN_LSTM_MARGIN:.0%}")
    for failure in failures:
        print(f"error: {failure}. Check the reference layers and the settings at the top of {Path(__file__).name}.",
              file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
