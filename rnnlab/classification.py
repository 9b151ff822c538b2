r"""Many-to-one sequence classifiers: a recurrent cell read at one step, softmax cross-entropy, early stopping.

A classifier runs a cell over ``inputs (B, T, I)`` and maps one step's output ``y_s (B, H)`` to
logits ``z = y_s V + c`` of ``C`` classes. Which step is ``s`` is the ``read`` option:

* ``"last_valid"``: ``s = lengths - 1``, each sequence's own last step, with
  :func:`rnnlab.unroll` given ``lengths`` so steps past it leave the carry unchanged (masking):
  whatever the padding holds, the logits are those of the unpadded sequence;
* ``"end"``: ``s = T - 1``, the last step of the padded array, without masking. With padding after
  the sequence the model must carry its answer through the padding; with padding in front
  (:func:`rnnlab.data.sentiment.align_right`) it reads the padding first. For sequences that all
  have length ``T`` both reads give the same logits, and ``"end"`` lets :func:`rnnlab.unroll`
  take its fused backward pass.

A bidirectional core (or a stack whose last layer is :class:`~rnnlab.layers.Bidirectional`, with
``merge="concat"``) is read at ``s`` for its forward half and at step 0 for its backward half, where
the backward direction has read the whole sequence (:func:`rnnlab.models.read_summary`).

The loss is the mean softmax cross-entropy ``-log softmax(z)_y`` over the batch;
:func:`train_classifier` trains ``seeds`` models at once with :func:`rnnlab.fit.fit`, drawing
training examples at random, keeps each model's parameters at its best validation score and stops
a model after ``patience`` evaluations without improvement.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnlab import _checks
from rnnlab.fit import FitResult, evaluate
from rnnlab.models import check_summary_read, read_summary, sequence_model
from rnnlab.supervised import FitSettings, fit_on_dataset

READS = ("last_valid", "end")
MONITORS = ("error", "cross_entropy")


class LabelledBatch(NamedTuple):
    """Labelled sequences: ``inputs (B, T, I)`` float, ``labels (B,)`` int class ids, ``lengths (B,)`` int in [1, T]."""

    inputs: jax.Array
    labels: jax.Array
    lengths: jax.Array


def labelled_batch(inputs, labels, lengths=None, *, where: str = "labelled_batch") -> LabelledBatch:
    """Checks and converts numpy data to a float32 / int32 :class:`LabelledBatch` (``lengths`` default ``T``).

    Raises:
        ValueError: shapes that disagree, or lengths outside ``[1, T]``, naming the argument.

    Example:
        >>> b = labelled_batch(np.zeros((3, 5, 2)), [0, 1, 0], [5, 2, 1])
        >>> b.inputs.dtype, b.labels.dtype, b.lengths.tolist()
        (dtype('float32'), dtype('int32'), [5, 2, 1])
    """
    x = np.asarray(inputs)
    if x.ndim != 3 or 0 in x.shape:
        raise ValueError(f"{where}: inputs must have shape (B, T, I) with no empty axis; got {x.shape}")
    b, t, _ = x.shape
    y = np.asarray(labels)
    if y.shape != (b,) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"{where}: labels must be {b} class ids >= 0, shape ({b},); got shape {y.shape}, "
                         f"dtype {y.dtype}")  # fmt: skip
    n = np.full(b, t) if lengths is None else np.asarray(lengths)
    if n.shape != (b,) or not np.issubdtype(n.dtype, np.integer):
        raise ValueError(f"{where}: lengths must be {b} ints, shape ({b},); got shape {n.shape}, dtype {n.dtype}")
    if n.min() < 1 or n.max() > t:
        raise ValueError(f"{where}: lengths must lie in [1, T={t}]; got values in [{n.min()}, {n.max()}]")
    return LabelledBatch(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32), jnp.asarray(n, jnp.int32))


@dataclasses.dataclass(frozen=True)
class ClassifySettings(FitSettings):
    """How :func:`train_classifier` trains: the fields of :class:`~rnnlab.supervised.FitSettings` (``seeds``,
    ``batch_size`` sequences, ``steps``, ``eval_every``, ``patience``, ``optimizer``) and one more.

    Attributes:
        monitor: the validation score that picks each model's best parameters and stops it:
            ``"error"`` (1 - accuracy) or ``"cross_entropy"``.
    """

    monitor: str = "error"

    def __post_init__(self):
        super().__post_init__()
        _checks.choice("ClassifySettings", "monitor", self.monitor, MONITORS)


class Classifier(NamedTuple):
    """A cell with a linear readout of ``C`` logits read at one step, and its loss.

    Attributes:
        init: ``init(key) -> params``.
        logits: ``logits(params, inputs (B, T, I), lengths (B,), dropout_key=None) -> (B, C)``; a
            ``dropout_key`` turns on a :class:`~rnnlab.layers.Stack`'s dropout (training only).
        loss: ``loss(params, batch: LabelledBatch, dropout_key=None) -> scalar`` mean cross-entropy.
        metrics: ``metrics(params, batch) -> {"cross_entropy", "accuracy", "error"}`` scalars.
        read: ``"last_valid"`` or ``"end"`` (module docstring).
    """

    init: object
    logits: object
    loss: object
    metrics: object
    read: str


def classifier(cell, input_size: int, classes: int, *, read: str = "last_valid") -> Classifier:
    """The :class:`Classifier` of ``cell`` for inputs of ``input_size`` features and ``classes`` classes.

    Example:
        >>> from rnnlab import cells
        >>> c = classifier(cells.elman(6), input_size=2, classes=3)
        >>> params = c.init(jax.random.key(0))
        >>> x = jax.random.normal(jax.random.key(1), (4, 5, 2))
        >>> lengths = jnp.array([5, 3, 2, 1])
        >>> logits = jax.jit(c.logits)
        >>> logits(params, x, lengths).shape
        (4, 3)
        >>> noisy = x.at[:, 3:].set(7.0)        # changes only the steps past lengths 3, 2, 1
        >>> bool(jnp.allclose(logits(params, noisy, lengths)[1:], logits(params, x, lengths)[1:]))
        True
    """
    where = "classifier"
    input_size = _checks.positive_int(where, "input_size", input_size)
    classes = _checks.positive_int(where, "classes", classes)
    _checks.choice(where, "read", read, READS)
    model = sequence_model(cell, classes)
    check_summary_read(where, cell)

    def logits(params, inputs, lengths, dropout_key=None):
        x = jnp.asarray(inputs, jax.tree.leaves(params)[0].dtype)
        if read == "end":
            ys, steps = model.hidden(params, x, dropout_key=dropout_key)[1], None
        else:
            ys = model.hidden(params, x, lengths=lengths, dropout_key=dropout_key)[1]  # zero past each length
            steps = lengths - 1
        return model.readout(params, read_summary(cell, ys, steps))

    def cross_entropy(z, labels):
        return -jnp.take_along_axis(jax.nn.log_softmax(z, axis=-1), labels[:, None], axis=-1)[:, 0]

    def loss(params, batch, dropout_key=None):
        return jnp.mean(cross_entropy(logits(params, batch.inputs, batch.lengths, dropout_key), batch.labels))

    def metrics(params, batch):
        z = logits(params, batch.inputs, batch.lengths)
        # The mean of the wrong answers is exactly 0 when none is wrong; XLA may compute a mean of ones as
        # n * (1 / n), a hair above 1, so accuracy is taken from the error.
        error = jnp.mean((jnp.argmax(z, axis=-1) != batch.labels).astype(jnp.float32))
        return {"cross_entropy": jnp.mean(cross_entropy(z, batch.labels)), "accuracy": 1.0 - error, "error": error}

    return Classifier(lambda key: model.init(key, input_size), logits, loss, metrics, read)


def train_classifier(
    cell, train: LabelledBatch, validation: LabelledBatch, settings: ClassifySettings, *, classes: int,
    read: str = "last_valid", seed: int = 0, progress=True, label=None,
) -> tuple[Classifier, FitResult]:  # fmt: skip
    """Trains ``settings.seeds`` classifiers of ``cell`` on ``train``, early-stopped on ``validation``.

    Args:
        cell: a recurrent cell (or anything :func:`rnnlab.unroll` runs).
        train, validation: :class:`LabelledBatch` (see :func:`labelled_batch`); the whole
            validation set is one evaluation batch.
        settings: see :class:`ClassifySettings`.
        classes: ``C``, the number of classes.
        read: ``"last_valid"`` (masked) or ``"end"`` (module docstring).
        seed: with the same seed, the same models and batches.

    Returns:
        ``(classifier, fit_result)``; ``fit_result.params`` holds each seed's best parameters
        (leading axis N), and its history ``"eval/accuracy"``, ``"eval/error"`` and
        ``"eval/cross_entropy"`` ``(E, N)`` the validation curves.

    Example:
        >>> from rnnlab import cells
        >>> x = np.random.default_rng(0).normal(size=(40, 6, 1))
        >>> data = labelled_batch(x, (x[:, 0, 0] > 0).astype(int))      # the sign of the first step
        >>> s = ClassifySettings(seeds=2, batch_size=8, steps=20, eval_every=10)
        >>> c, result = train_classifier(cells.elman(4), data, data, s, classes=2, progress=False)
        >>> result.history["eval/accuracy"].shape, evaluate_seeds(c, result.params, data)["accuracy"].shape
        ((3, 2), (2,))
    """
    where = "train_classifier"
    if not isinstance(settings, ClassifySettings):
        raise TypeError(f"{where}: settings must be a ClassifySettings; got {type(settings).__name__}")
    for name, b in (("train", train), ("validation", validation)):
        if not isinstance(b, LabelledBatch):
            raise TypeError(f"{where}: {name} must be a LabelledBatch (see labelled_batch); got {type(b).__name__}")
    if train.inputs.shape[2] != validation.inputs.shape[2]:
        raise ValueError(f"{where}: train and validation must have the same features; got inputs "
                         f"{tuple(train.inputs.shape)} and {tuple(validation.inputs.shape)}")  # fmt: skip
    classes = _checks.positive_int(where, "classes", classes)
    top = int(max(jnp.max(train.labels), jnp.max(validation.labels)))
    if top >= classes:
        raise ValueError(f"{where}: labels must lie in [0, classes={classes}); got a label {top}")
    model = classifier(cell, train.inputs.shape[2], classes, read=read)
    result = fit_on_dataset(
        model.init, model.loss, model.metrics, train, validation, settings, monitor=settings.monitor, seed=seed,
        progress=progress, label=label or f"{getattr(cell, 'name', 'cell')} {read}",
    )  # fmt: skip
    return model, result


@functools.lru_cache(maxsize=64)
def _vmapped_logits(logits):
    return jax.jit(jax.vmap(logits, in_axes=(0, None, None)))


def predict_seeds(model: Classifier, params, batch: LabelledBatch) -> np.ndarray:
    """Every seed's logits: ``(N, B, C)`` for stacked ``params`` (leading axis N).

    The compiled function is cached per classifier, so batches of one shape compile once.
    """
    return np.asarray(_vmapped_logits(model.logits)(params, batch.inputs, batch.lengths))


def evaluate_seeds(model: Classifier, params, batch: LabelledBatch) -> dict[str, np.ndarray]:
    """``{"cross_entropy", "accuracy", "error"}`` of every seed on ``batch``: ``(N,)`` arrays."""
    return evaluate(model.metrics, params, batch)
