"""Train small models built from your own layers, and load the weights trained with the reference layers.

The layer classes you pass in follow the notebooks' API:
- Conv2D and MaxPool2D: forward(X) and backward(dout). Conv2D.backward stores dfilters and dbias.
- RNNCell: forward(inputs) -> (outputs, hidden_states) and backward(d_outputs), which stores dW_xh,
  dW_hh, dW_hy, db_h and db_y.
- LSTM: forward(inputs) -> hidden_states and backward(d_hidden_states), which leaves cell.dW and cell.db.
This module adds what the models need around them: ReLU, Affine, softmax cross-entropy, SGD and
Adam, all in numpy.

Every parameter is an array attribute of a layer, and its gradient is the attribute of the same
name with a "d" prefix (W and dW, filters and dfilters). The optimizers rely on that rule.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
CNN_WEIGHTS = WEIGHTS_DIR / "cnn_digits.npz"
LSTM_WEIGHTS = WEIGHTS_DIR / "lstm_recall.npz"
RNN_WEIGHTS = WEIGHTS_DIR / "rnn_recall.npz"

# A parameter is named by the layer that owns it and its attribute name, e.g. (affine, "W").
Parameter = tuple[object, str]


# ---------------------------------------------------------------------------------------------
# Layers given to you: ReLU, Affine and softmax cross-entropy


class ReLU:
    """Rectified linear unit max(0, x), applied elementwise to an array of any shape."""

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Return max(0, X) and keep the mask of positive entries for backward."""
        self.mask = X > 0
        return np.where(self.mask, X, 0.0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Return the gradient with respect to the last forward's input: dout where X > 0, else 0."""
        return np.where(self.mask, dout, 0.0)


class Affine:
    """Fully connected layer X W + b.

    Parameters: W (in_features, out_features) and b (out_features,). The input has shape
    (N, in_features) or (N, ...), in which case each row is flattened first.
    """

    def __init__(self, in_features: int, out_features: int, rng: np.random.Generator | None = None) -> None:
        rng = np.random.default_rng() if rng is None else rng
        # He (Kaiming) scaling sqrt(2 / fan_in), as the input usually comes from a ReLU.
        self.W = rng.standard_normal((in_features, out_features)) * np.sqrt(2.0 / in_features)
        self.b = np.zeros(out_features)

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Return X W + b of shape (N, out_features), flattening X to (N, in_features) first."""
        self.input_shape = X.shape
        self.X = X.reshape(X.shape[0], -1)
        if self.X.shape[1] != self.W.shape[0]:
            raise ValueError(
                f"Affine.forward expects {self.W.shape[0]} features per example, "
                f"got an input of shape {X.shape}"
            )
        return self.X @ self.W + self.b

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Store dW and db, and return the gradient with respect to the input, in the input's shape."""
        self.dW = self.X.T @ dout
        self.db = dout.sum(axis=0)
        return (dout @ self.W.T).reshape(self.input_shape)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Return the softmax of each row of logits (N, K), computed without overflow."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


class SoftmaxCrossEntropy:
    """Mean cross-entropy of a softmax over the class scores (logits) against integer labels."""

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        """Return the mean over the batch of -log softmax(logits)[label]. logits (N, K), labels (N,)."""
        if logits.ndim != 2 or labels.shape != (logits.shape[0],):
            raise ValueError(
                f"SoftmaxCrossEntropy.forward expects logits (N, K) and labels (N,), "
                f"got shapes {logits.shape} and {labels.shape}"
            )
        self.probabilities = softmax(logits)
        self.labels = labels

        rows = np.arange(len(labels))
        # log softmax computed from the shifted logits, so a large logit cannot overflow exp.
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-log_probabilities[rows, labels].mean())

    def backward(self) -> np.ndarray:
        """Return d loss / d logits = (softmax(logits) - one_hot(labels)) / N."""
        gradient = self.probabilities.copy()
        gradient[np.arange(len(self.labels)), self.labels] -= 1.0
        return gradient / len(self.labels)


# ---------------------------------------------------------------------------------------------
# Optimizers


def gradient_of(parameter: Parameter) -> np.ndarray:
    """Return the gradient stored next to a parameter: attribute "d" + name of the same layer."""
    owner, name = parameter
    gradient = getattr(owner, "d" + name, None)
    if gradient is None:
        raise AttributeError(
            f"{type(owner).__name__} has no gradient d{name} for its parameter {name}. "
            f"Its backward must store it."
        )
    value = getattr(owner, name)
    if np.shape(gradient) != value.shape:
        raise ValueError(
            f"{type(owner).__name__}.d{name} has shape {np.shape(gradient)}, "
            f"but the parameter {name} has shape {value.shape}"
        )
    return np.asarray(gradient)


def clip_gradients(parameters: list[Parameter], max_norm: float) -> float:
    """Scale all gradients down together so that their global L2 norm is at most max_norm.

    Returns the norm before clipping. Clipping keeps a rare huge BPTT gradient of a recurrent net
    from throwing its weights far away.
    """
    gradients = [gradient_of(parameter) for parameter in parameters]
    norm = float(np.sqrt(sum(np.sum(gradient**2) for gradient in gradients)))
    if norm > max_norm:
        factor = max_norm / norm
        for (owner, name), gradient in zip(parameters, gradients):
            setattr(owner, "d" + name, gradient * factor)
    return norm


class SGD:
    """Stochastic gradient descent with optional momentum: v = momentum v - lr g, then p = p + v."""

    def __init__(self, lr: float = 0.1, momentum: float = 0.0) -> None:
        self.lr = lr
        self.momentum = momentum
        self.velocities: dict[tuple[int, str], np.ndarray] = {}

    def step(self, parameters: list[Parameter]) -> None:
        """Update every parameter in place from the gradient its layer stores."""
        for owner, name in parameters:
            gradient = gradient_of((owner, name))
            key = (id(owner), name)
            velocity = self.velocities.get(key, np.zeros_like(gradient))
            velocity = self.momentum * velocity - self.lr * gradient
            self.velocities[key] = velocity
            getattr(owner, name)[...] += velocity


class Adam:
    """Adam: gradient steps scaled by running estimates of each weight's gradient mean and variance."""

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.steps = 0
        self.first_moments: dict[tuple[int, str], np.ndarray] = {}
        self.second_moments: dict[tuple[int, str], np.ndarray] = {}

    def step(self, parameters: list[Parameter]) -> None:
        """Update every parameter in place from the gradient its layer stores."""
        self.steps += 1
        # Bias correction: both moment estimates start at zero and would be too small early on.
        correction1 = 1.0 - self.beta1**self.steps
        correction2 = 1.0 - self.beta2**self.steps

        for owner, name in parameters:
            gradient = gradient_of((owner, name))
            key = (id(owner), name)
            m = self.beta1 * self.first_moments.get(key, 0.0) + (1.0 - self.beta1) * gradient
            v = self.beta2 * self.second_moments.get(key, 0.0) + (1.0 - self.beta2) * gradient**2
            self.first_moments[key] = m
            self.second_moments[key] = v
            getattr(owner, name)[...] -= self.lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)


# ---------------------------------------------------------------------------------------------
# Models


def _he_normal(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


def _set_parameter(owner: object, name: str, value: np.ndarray) -> None:
    """Replace a layer's parameter, after checking that the layer created it with the same shape."""
    current = getattr(owner, name, None)
    if current is None:
        raise AttributeError(f"{type(owner).__name__} has no parameter {name}. Its constructor must create it.")
    if np.shape(current) != np.shape(value):
        raise ValueError(
            f"{type(owner).__name__}.{name} has shape {np.shape(current)}, "
            f"but shape {np.shape(value)} was expected. Check the constructor's arguments."
        )
    setattr(owner, name, np.array(value, dtype=np.float64))


class Model:
    """Base class of the models below: parameters, state for saving, and prediction."""

    # Axis of the input arrays that indexes the examples: 0 for images (N, C, H, W), 1 for (T, N, D).
    batch_axis = 0

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dlogits: np.ndarray) -> None:
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        """List the (layer, attribute name) of every trainable parameter, in a fixed order."""
        raise NotImplementedError

    def config(self) -> dict[str, int]:
        """Return the constructor arguments that fix the shapes of the parameters."""
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """Return the parameters by name, e.g. "conv.filters", in the order of parameters()."""
        names = self.parameter_names()
        return {names[index]: getattr(owner, name) for index, (owner, name) in enumerate(self.parameters())}

    def parameter_names(self) -> list[str]:
        """Return the names under which the parameters are saved, in the order of parameters()."""
        raise NotImplementedError

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Set every parameter from state, a mapping with the names of parameter_names()."""
        names = self.parameter_names()
        missing = [name for name in names if name not in state]
        if missing:
            raise KeyError(f"the saved weights have no {', '.join(missing)}")
        for saved_name, (owner, name) in zip(names, self.parameters()):
            _set_parameter(owner, name, state[saved_name])

    def predict(self, inputs: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Return the predicted class of every example, running forward in batches."""
        count = inputs.shape[self.batch_axis]
        predictions = []
        for start in range(0, count, batch_size):
            batch = np.take(inputs, np.arange(start, min(start + batch_size, count)), axis=self.batch_axis)
            predictions.append(self.forward(batch).argmax(axis=1))
        return np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.int64)


class SmallCNN(Model):
    """Conv2D -> ReLU -> MaxPool2D -> Affine, built from the Conv2D and MaxPool2D classes passed in.

    Images (N, in_channels, image_size, image_size) go to class scores (N, n_classes). The
    convolution has stride 1 and keeps the image size when padding = (kernel_size - 1) / 2. The
    constructor draws every parameter from a Generator seeded with seed, so two models built with
    the same arguments start identical whatever the layer classes draw in their own constructors.
    """

    batch_axis = 0

    def __init__(
        self,
        Conv2D: type,
        MaxPool2D: type,
        in_channels: int = 1,
        image_size: int = 16,
        n_filters: int = 8,
        kernel_size: int = 3,
        padding: int = 1,
        pool_size: int = 2,
        n_classes: int = 10,
        seed: int = 0,
    ) -> None:
        self.settings = dict(
            in_channels=in_channels, image_size=image_size, n_filters=n_filters, kernel_size=kernel_size,
            padding=padding, pool_size=pool_size, n_classes=n_classes,
        )
        rng = np.random.default_rng(seed)

        self.conv = Conv2D(in_channels, n_filters, kernel_size, stride=1, padding=padding)
        self.relu = ReLU()
        self.pool = MaxPool2D(kernel_size=pool_size, stride=pool_size)

        conv_size = image_size + 2 * padding - kernel_size + 1
        pool_output_size = (conv_size - pool_size) // pool_size + 1
        self.affine = Affine(n_filters * pool_output_size**2, n_classes, rng)

        fan_in = in_channels * kernel_size * kernel_size
        _set_parameter(self.conv, "filters", _he_normal(rng, (n_filters, in_channels, kernel_size, kernel_size), fan_in))
        _set_parameter(self.conv, "bias", np.zeros(n_filters))

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Return the class scores (N, n_classes) of images X (N, C, H, W)."""
        feature_maps = self.relu.forward(self.conv.forward(X))
        return self.affine.forward(self.pool.forward(feature_maps))

    def backward(self, dlogits: np.ndarray) -> None:
        """Back-propagate d loss / d scores (N, n_classes), leaving the gradients on the layers."""
        dpooled = self.affine.backward(dlogits)
        dfeature_maps = self.relu.backward(self.pool.backward(dpooled))
        self.conv.backward(dfeature_maps)

    def parameters(self) -> list[Parameter]:
        return [(self.conv, "filters"), (self.conv, "bias"), (self.affine, "W"), (self.affine, "b")]

    def parameter_names(self) -> list[str]:
        return ["conv.filters", "conv.bias", "affine.W", "affine.b"]

    def config(self) -> dict[str, int]:
        return dict(self.settings)


class SequenceClassifier(Model):
    """Classify a whole sequence (T, N, D) from the hidden state of a recurrent layer at its last step."""

    batch_axis = 1


class LSTMClassifier(SequenceClassifier):
    """LSTM layer (the class passed in) whose last hidden state h_T goes through an Affine head.

    The forget gate's bias starts at forget_bias rather than 0. A forget gate near 1 keeps the cell
    state from one step to the next, so the gradient reaches early time steps from the start of
    training. With a bias of 0 the gate starts at 0.5 and the gradient halves at every step back.
    """

    def __init__(
        self, LSTM: type, input_size: int, hidden_size: int, n_classes: int, seed: int = 0, forget_bias: float = 1.0
    ) -> None:
        self.settings = dict(input_size=input_size, hidden_size=hidden_size, n_classes=n_classes)
        rng = np.random.default_rng(seed)

        self.lstm = LSTM(input_size, hidden_size)
        self.head = Affine(hidden_size, n_classes, rng)
        self.cell = self.lstm.cell

        # Glorot-style scale 1 / sqrt(fan_in) for the tanh and sigmoid units. Blocks: f, i, o, g.
        W = rng.standard_normal((hidden_size + input_size, 4 * hidden_size)) / np.sqrt(hidden_size + input_size)
        b = np.zeros(4 * hidden_size)
        b[:hidden_size] = forget_bias
        _set_parameter(self.cell, "W", W)
        _set_parameter(self.cell, "b", b)

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        """Return the class scores (N, n_classes) of the sequences inputs (T, N, D)."""
        # An LSTMCell keeps a stack of the steps that backward has not consumed yet. Forward passes
        # without a backward (evaluation) would grow it without end, so each forward starts it empty.
        cache = getattr(self.cell, "cache", None)
        if isinstance(cache, list):
            cache.clear()

        self.hidden_states = self.lstm.forward(inputs)
        return self.head.forward(self.hidden_states[-1])

    def backward(self, dlogits: np.ndarray) -> None:
        """Back-propagate d loss / d scores: only h_T feeds the head, so the other dh_t start at 0."""
        d_hidden_states = np.zeros_like(self.hidden_states)
        d_hidden_states[-1] = self.head.backward(dlogits)
        self.lstm.backward(d_hidden_states)

    def parameters(self) -> list[Parameter]:
        return [(self.cell, "W"), (self.cell, "b"), (self.head, "W"), (self.head, "b")]

    def parameter_names(self) -> list[str]:
        return ["lstm.cell.W", "lstm.cell.b", "head.W", "head.b"]

    def config(self) -> dict[str, int]:
        return dict(self.settings)


class RNNClassifier(SequenceClassifier):
    """Vanilla RNN (the RNNCell class passed in) whose output at the last step is the class scores.

    RNNCell(D, H, n_classes) already ends in an affine output layer y_t = h_t W_hy + b_y, so y_T
    plays the part of the LSTMClassifier's head, with parameters of the same shapes (H, n_classes)
    and (n_classes,). With equal hidden sizes the two classifiers differ only in the recurrence.
    """

    def __init__(self, RNNCell: type, input_size: int, hidden_size: int, n_classes: int, seed: int = 0) -> None:
        self.settings = dict(input_size=input_size, hidden_size=hidden_size, n_classes=n_classes)
        rng = np.random.default_rng(seed)

        self.rnn = RNNCell(input_size, hidden_size, n_classes)

        # W_hh with entries of variance 1 / H has a spectral radius near 1, so the hidden state
        # neither dies out nor explodes at the start of training. This gives the plain RNN a fair start.
        _set_parameter(self.rnn, "W_xh", rng.standard_normal((input_size, hidden_size)) / np.sqrt(input_size))
        _set_parameter(self.rnn, "W_hh", rng.standard_normal((hidden_size, hidden_size)) / np.sqrt(hidden_size))
        _set_parameter(self.rnn, "W_hy", _he_normal(rng, (hidden_size, n_classes), hidden_size))
        _set_parameter(self.rnn, "b_h", np.zeros(hidden_size))
        _set_parameter(self.rnn, "b_y", np.zeros(n_classes))

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        """Return the class scores (N, n_classes): the RNN's output y_T at the last step."""
        outputs, _ = self.rnn.forward(inputs)
        self.output_shape = outputs.shape
        return outputs[-1]

    def backward(self, dlogits: np.ndarray) -> None:
        """Back-propagate d loss / d scores: only y_T is used, so the other d y_t are 0."""
        d_outputs = np.zeros(self.output_shape)
        d_outputs[-1] = dlogits
        self.rnn.backward(d_outputs)

    def parameters(self) -> list[Parameter]:
        return [(self.rnn, name) for name in ("W_xh", "W_hh", "W_hy", "b_h", "b_y")]

    def parameter_names(self) -> list[str]:
        return [f"rnn.{name}" for _, name in self.parameters()]

    def config(self) -> dict[str, int]:
        return dict(self.settings)


# ---------------------------------------------------------------------------------------------
# Training


def accuracy(model: Model, inputs: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
    """Return the fraction of examples that the model classifies correctly."""
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(model.predict(inputs, batch_size) == labels))


def train(
    model: Model,
    inputs_train: np.ndarray,
    labels_train: np.ndarray,
    inputs_test: np.ndarray,
    labels_test: np.ndarray,
    *,
    epochs: int = 5,
    batch_size: int = 64,
    optimizer: SGD | Adam | None = None,
    max_grad_norm: float | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = print,
) -> dict[str, list[float]]:
    """Train a model with mini-batches of softmax cross-entropy, and evaluate it after every epoch.

    Examples lie along model.batch_axis of the inputs: axis 0 for images (N, C, H, W), axis 1 for
    sequences (T, N, D). Each epoch visits the training set in an order drawn from a Generator
    seeded with seed, so the same call gives the same result. optimizer defaults to Adam(lr=1e-3).
    max_grad_norm, if set, clips the global gradient norm of each step. log receives one line per
    epoch, or nothing if it is None.

    Returns the history: lists "loss" (mean training loss of the epoch), "train_accuracy" (on the
    epoch's mini-batches, measured before each update), "test_accuracy" (after the epoch) and
    "seconds" (time the epoch took), one entry per epoch.
    """
    optimizer = Adam() if optimizer is None else optimizer
    rng = np.random.default_rng(seed)
    loss_function = SoftmaxCrossEntropy()
    parameters = model.parameters()
    count = inputs_train.shape[model.batch_axis]
    if count != len(labels_train):
        raise ValueError(
            f"train: {count} training inputs along axis {model.batch_axis} but {len(labels_train)} labels"
        )
    history: dict[str, list[float]] = {"loss": [], "train_accuracy": [], "test_accuracy": [], "seconds": []}

    for epoch in range(epochs):
        start_time = time.perf_counter()
        order = rng.permutation(count)
        loss_sum, correct = 0.0, 0

        for start in range(0, count, batch_size):
            batch = order[start : start + batch_size]
            inputs = np.take(inputs_train, batch, axis=model.batch_axis)
            labels = labels_train[batch]

            logits = model.forward(inputs)
            loss_sum += loss_function.forward(logits, labels) * len(batch)
            correct += int(np.sum(logits.argmax(axis=1) == labels))

            model.backward(loss_function.backward())
            if max_grad_norm is not None:
                clip_gradients(parameters, max_grad_norm)
            optimizer.step(parameters)

        history["loss"].append(loss_sum / count)
        history["train_accuracy"].append(correct / count)
        history["test_accuracy"].append(accuracy(model, inputs_test, labels_test))
        history["seconds"].append(time.perf_counter() - start_time)

        if log is not None:
            log(
                f"epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.4f}, "
                f"train accuracy {history['train_accuracy'][-1]:.1%}, "
                f"test accuracy {history['test_accuracy'][-1]:.1%} ({history['seconds'][-1]:.1f} s)"
            )
    return history


def plot_history(history: Mapping[str, list[float]] | Mapping[str, Mapping[str, list[float]]]):
    """Plot the loss and the accuracies of one training history, or of several by name.

    history is what train returns, or a mapping from a model's name to such a history, for example
    {"LSTM": lstm_history, "RNN": rnn_history}. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    histories = {"": history} if "loss" in history else dict(history)
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 3.5))

    for name, run in histories.items():
        prefix = f"{name} " if name else ""
        epochs = np.arange(1, len(run["loss"]) + 1)
        loss_line, = loss_axes.plot(epochs, run["loss"], marker="o", label=f"{prefix}training loss")
        color = loss_line.get_color()
        accuracy_axes.plot(epochs, run["train_accuracy"], marker="o", color=color, label=f"{prefix}train")
        accuracy_axes.plot(epochs, run["test_accuracy"], marker="s", linestyle="--", color=color,
                           label=f"{prefix}test")

    loss_axes.set(xlabel="epoch", ylabel="cross-entropy", title="Training loss")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1.02))
    for axes in (loss_axes, accuracy_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    return figure


# ---------------------------------------------------------------------------------------------
# Saving and loading weights

# Fixed time stamp of every member of a written .npz, so equal arrays give equal bytes.
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def write_npz(path: str | Path, arrays: Mapping[str, np.ndarray | int | float]) -> None:
    """Write arrays to a compressed .npz that np.load reads, byte for byte the same for the same arrays.

    np.savez stamps each member with the current time, so two runs differ. Here every member gets a
    fixed time stamp and the members keep the order of arrays.
    """
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(value), allow_pickle=False)
            member = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            archive.writestr(member, buffer.getvalue())


def save_model(path: str | Path, model: Model, info: Mapping[str, int | float]) -> None:
    """Write a model's config ("config.*"), parameters and info ("info.*", e.g. data seed) to an .npz."""
    arrays: dict[str, np.ndarray | int | float] = {}
    arrays.update({f"config.{key}": value for key, value in model.config().items()})
    arrays.update(model.state())
    arrays.update({f"info.{key}": value for key, value in info.items()})
    write_npz(path, arrays)


def _read_npz(path: str | Path) -> tuple[dict[str, int], dict[str, np.ndarray], dict[str, int | float]]:
    """Read an .npz written by save_model: (config, parameters by name, info)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}. Keep the weights/ folder next to coursekit/.")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}

    config = {name[len("config."):]: int(value) for name, value in arrays.items() if name.startswith("config.")}
    info = {name[len("info."):]: value.item() for name, value in arrays.items() if name.startswith("info.")}
    state = {name: value for name, value in arrays.items() if not name.startswith(("config.", "info."))}
    return config, state, info


def load_trained_cnn(Conv2D: type, MaxPool2D: type, path: str | Path = CNN_WEIGHTS) -> SmallCNN:
    """Build a SmallCNN from your Conv2D and MaxPool2D classes and load the trained weights into it.

    The returned model's info records how it was trained, e.g. info["data_seed"], info["n_train"]
    and info["n_test"] for load_digits, and info["test_accuracy"] measured with the reference layers.
    """
    config, state, info = _read_npz(path)
    model = SmallCNN(Conv2D, MaxPool2D, **config)
    model.load_state(state)
    model.info = info
    return model


def load_trained_lstm(LSTM: type, path: str | Path = LSTM_WEIGHTS) -> LSTMClassifier:
    """Build an LSTMClassifier from your LSTM class and load the weights trained on the recall task.

    model.info holds the task (info["T"], info["n_symbols"], info["test_seed"], info["n_test"]) and
    info["test_accuracy"] measured with the reference layers.
    """
    config, state, info = _read_npz(path)
    model = LSTMClassifier(LSTM, **config)
    model.load_state(state)
    model.info = info
    return model


def load_trained_rnn(RNNCell: type, path: str | Path = RNN_WEIGHTS) -> RNNClassifier:
    """Build an RNNClassifier from your RNNCell class and load the weights trained on the recall task."""
    config, state, info = _read_npz(path)
    model = RNNClassifier(RNNCell, **config)
    model.load_state(state)
    model.info = info
    return model
