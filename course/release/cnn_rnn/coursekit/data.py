"""Small data sets that are generated on the fly, so nothing is downloaded and nothing is cached on disk.

- load_digits: grayscale images of the digits 0-9, rendered with the DejaVu fonts that matplotlib
  ships, then jittered by a random affine map, a random stroke thickness and pixel noise.
- make_recall_task: one-hot symbol sequences whose label is the symbol at the first time step,
  followed by distractors, so a model has to keep that symbol in its hidden state.

Both draw every random number from a numpy Generator seeded by the caller, so the same arguments
give the same arrays on every call.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import PathPatch
from matplotlib.textpath import TextPath
from matplotlib.transforms import Affine2D

N_CLASSES = 10
IMAGE_SIZE = 16

# Font files that matplotlib ships in mpl-data/fonts/ttf (matplotlib 3.x). Any that are missing
# are skipped, but then the images differ from those the committed weights were trained on.
DIGIT_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
)

# Extra stroke drawn around each glyph outline, in pixels of the template. Each image uses one.
STROKE_WIDTHS = (0.0, 2.0, 4.0)

TEMPLATE_SIZE = 64
# The tallest digit of each font fills this fraction of the template's height.
GLYPH_HEIGHT = 0.68
# Each output pixel averages SUPERSAMPLING x SUPERSAMPLING samples of the template (anti-aliasing).
SUPERSAMPLING = 2

# Ranges of the random jitter. Shifts are in output pixels, angles in degrees.
MAX_SHIFT = 1.5
MAX_ROTATION = 12.0
SCALE_RANGE = (0.85, 1.1)
MAX_ASPECT_CHANGE = 0.1
MAX_SHEAR = 0.15
CONTRAST_RANGE = (0.7, 1.0)
NOISE_STD = 0.08

# Images are warped in chunks of this many, to bound the memory of the index arrays.
WARP_CHUNK = 1000


def available_fonts() -> list[Path]:
    """List the font files of DIGIT_FONTS that this matplotlib installation contains, in that order."""
    font_folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = [font_folder / name for name in DIGIT_FONTS if (font_folder / name).is_file()]
    if not fonts:
        raise FileNotFoundError(
            f"none of the fonts {', '.join(DIGIT_FONTS)} was found in {font_folder}. Reinstall matplotlib."
        )
    return fonts


def _render_glyph(path, stroke_width: float) -> np.ndarray:
    """Rasterize a glyph path, already placed in the unit square, to a (TEMPLATE_SIZE, TEMPLATE_SIZE) image."""
    # One inch at TEMPLATE_SIZE dots per inch, so a point is TEMPLATE_SIZE / 72 pixels.
    figure = Figure(figsize=(1, 1), dpi=TEMPLATE_SIZE, facecolor="black")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)

    # The stroke straddles the outline, so a line width of 2w points widens each stroke by 2w points.
    linewidth_points = stroke_width * 72 / TEMPLATE_SIZE
    patch = PathPatch(path, facecolor="white", edgecolor="white", linewidth=linewidth_points)
    axes.add_patch(patch)

    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return rgba[:, :, 0].astype(np.float64) / 255.0


@lru_cache(maxsize=1)
def digit_templates() -> tuple[np.ndarray, np.ndarray]:
    """Render every digit in every font and stroke width, centred, at TEMPLATE_SIZE pixels.

    Returns (templates, labels): templates (K, TEMPLATE_SIZE, TEMPLATE_SIZE) in [0, 1] with the
    digit white on black, and labels (K,). The result is kept in memory for the next call.
    """
    templates, labels = [], []
    for font_file in available_fonts():
        font = FontProperties(fname=str(font_file))
        glyphs = [TextPath((0, 0), str(digit), size=1, prop=font) for digit in range(N_CLASSES)]

        # One scale per font keeps the digits of a font in proportion to each other.
        scale = GLYPH_HEIGHT / max(glyph.get_extents().height for glyph in glyphs)

        for digit, glyph in enumerate(glyphs):
            extents = glyph.get_extents()
            centre = Affine2D().translate(-extents.x0 - extents.width / 2, -extents.y0 - extents.height / 2)
            placed = glyph.transformed(centre.scale(scale).translate(0.5, 0.5))
            for stroke_width in STROKE_WIDTHS:
                templates.append(_render_glyph(placed, stroke_width))
                labels.append(digit)

    return np.stack(templates), np.array(labels)


def _random_inverse_maps(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw random affine maps and return their inverses as (matrices (count, 2, 2), offsets (count, 2)).

    The forward map takes a template point p, both in coordinates centred on the image with a
    half-width of 1, to A p + shift. Its inverse p = A^-1 (q - shift) gives, for each output pixel q,
    the point of the template to sample.
    """
    angle = np.deg2rad(rng.uniform(-MAX_ROTATION, MAX_ROTATION, count))
    scale = rng.uniform(*SCALE_RANGE, count)
    aspect = 1.0 + rng.uniform(-MAX_ASPECT_CHANGE, MAX_ASPECT_CHANGE, count)
    shear = rng.uniform(-MAX_SHEAR, MAX_SHEAR, count)
    shift = rng.uniform(-MAX_SHIFT, MAX_SHIFT, (count, 2)) * (2.0 / IMAGE_SIZE)

    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    stretch = np.zeros((count, 2, 2))
    stretch[:, 0, 0] = scale * aspect
    stretch[:, 0, 1] = shear * scale
    stretch[:, 1, 1] = scale / aspect

    inverse = np.linalg.inv(rotation @ stretch)
    return inverse, shift


def _warp(templates: np.ndarray, inverse: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Sample each template through its inverse affine map with bilinear interpolation.

    templates: (M, S, S), one per output image. Returns (M, IMAGE_SIZE, IMAGE_SIZE), each pixel the
    mean of SUPERSAMPLING^2 samples. Points outside the template read as 0 (black).
    """
    count, size, _ = templates.shape
    samples = IMAGE_SIZE * SUPERSAMPLING

    # Centres of the sample points, in coordinates from -1 to 1 across the output image.
    grid = (np.arange(samples) + 0.5) / samples * 2.0 - 1.0
    grid_y, grid_x = np.meshgrid(grid, grid, indexing="ij")
    points = np.stack([grid_x.ravel(), grid_y.ravel()])

    # (M, 2, P): where each sample point of each image comes from, in template pixel units.
    source = inverse @ (points[np.newaxis] - shift[:, :, np.newaxis])
    source_x = (source[:, 0] + 1.0) / 2.0 * size - 0.5
    source_y = (source[:, 1] + 1.0) / 2.0 * size - 0.5

    x0 = np.floor(source_x).astype(np.int64)
    y0 = np.floor(source_y).astype(np.int64)
    weight_x = source_x - x0
    weight_y = source_y - y0
    image_index = np.arange(count)[:, np.newaxis]

    def read(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        inside = (rows >= 0) & (rows < size) & (columns >= 0) & (columns < size)
        values = templates[image_index, np.clip(rows, 0, size - 1), np.clip(columns, 0, size - 1)]
        return np.where(inside, values, 0.0)

    sampled = (
        (1 - weight_y) * (1 - weight_x) * read(y0, x0)
        + (1 - weight_y) * weight_x * read(y0, x0 + 1)
        + weight_y * (1 - weight_x) * read(y0 + 1, x0)
        + weight_y * weight_x * read(y0 + 1, x0 + 1)
    )

    # Row index is y, so a template row drawn at the top (matplotlib's y = 1) stays at the top.
    sampled = sampled.reshape(count, IMAGE_SIZE, SUPERSAMPLING, IMAGE_SIZE, SUPERSAMPLING)
    return sampled.mean(axis=(2, 4))


def _balanced_labels(rng: np.random.Generator, count: int, n_classes: int) -> np.ndarray:
    """Return count labels in random order whose class counts differ by at most one."""
    return rng.permutation(np.arange(count) % n_classes)


def _render_split(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw count jittered digit images with balanced labels: ((count, 1, H, W), (count,))."""
    templates, template_labels = digit_templates()
    labels = _balanced_labels(rng, count, N_CLASSES)

    # Pick, for each image, one of the templates of its digit (any font, any stroke width).
    per_digit = [np.flatnonzero(template_labels == digit) for digit in range(N_CLASSES)]
    choice = rng.integers(0, len(per_digit[0]), count)
    template_index = np.array([per_digit[label][i] for label, i in zip(labels, choice)], dtype=np.int64)

    inverse, shift = _random_inverse_maps(rng, count)
    contrast = rng.uniform(*CONTRAST_RANGE, count)
    noise = rng.normal(0.0, NOISE_STD, (count, IMAGE_SIZE, IMAGE_SIZE))

    images = np.empty((count, IMAGE_SIZE, IMAGE_SIZE))
    for start in range(0, count, WARP_CHUNK):
        chunk = slice(start, start + WARP_CHUNK)
        images[chunk] = _warp(templates[template_index[chunk]], inverse[chunk], shift[chunk])

    images = np.clip(images * contrast[:, np.newaxis, np.newaxis] + noise, 0.0, 1.0)
    return images[:, np.newaxis], labels


def load_digits(
    n_train: int = 5000, n_test: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Generate a training and a test split of 16 x 16 grayscale digit images.

    Returns (X_train, y_train, X_test, y_test): X (N, 1, 16, 16) float64 in [0, 1], white digits on
    black, and y (N,) int64 labels 0-9, each class within one of N / 10 times. The two splits come
    from independent random streams, so the training images do not depend on n_test.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"load_digits: {name} must be a non-negative integer, got {value!r}")

    train_stream, test_stream = np.random.SeedSequence(seed).spawn(2)
    X_train, y_train = _render_split(np.random.default_rng(train_stream), n_train)
    X_test, y_test = _render_split(np.random.default_rng(test_stream), n_test)
    return X_train, y_train, X_test, y_test


def make_recall_task(n: int, T: int, n_symbols: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate n sequences whose label is the symbol shown at the first of their T time steps.

    The alphabet has n_symbols symbols, one-hot encoded, so D = n_symbols. Step 0 shows the symbol to
    recall. Steps 1 to T - 1 show distractors drawn uniformly from the same alphabet, so a model
    must store the first symbol and then ignore T - 1 inputs that look just like it.

    Returns (inputs, labels): inputs (T, n, n_symbols) float64 and labels (n,) int64, each symbol
    within one of n / n_symbols times.
    """
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"make_recall_task: n must be a non-negative integer, got {n!r}")
    if not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"make_recall_task: T must be an integer of at least 1, got {T!r}")
    if not isinstance(n_symbols, (int, np.integer)) or n_symbols < 2:
        raise ValueError(f"make_recall_task: n_symbols must be an integer of at least 2, got {n_symbols!r}")

    rng = np.random.default_rng(seed)
    labels = _balanced_labels(rng, n, n_symbols)
    symbols = rng.integers(0, n_symbols, (T, n))
    symbols[0] = labels

    inputs = np.zeros((T, n, n_symbols))
    time_index, sequence_index = np.indices((T, n))
    inputs[time_index, sequence_index, symbols] = 1.0
    return inputs, labels
