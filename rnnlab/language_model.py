r"""Character-level language models trained statefully with truncated BPTT.

A model reads one token per step (one-hot, ``(B, L, V)``) and predicts the next through a linear
readout and a softmax over the ``V`` ids. Training walks the :class:`~rnnlab.data.text.Lanes` of
a stream window by window: window ``k + 1`` of a lane continues window ``k``, so the carry after
window ``k`` starts window ``k + 1`` (the *stateful* part), while the gradient stops at the window
edge (truncated BPTT with ``L`` steps). Where a document starts inside a window, the carry is set
back to the fresh one (``resets`` with ``reset_carry``, see :func:`rnnlab.unroll`). The loss is
the mean cross-entropy in nats,

.. math::

    \ell = -\frac{1}{BL} \sum_{b, t} \log p_\theta(x^b_{t+1} \mid x^b_{\le t}),

and a model is scored by its bits per character on held-out text, ``bpc = nats / ln 2``, and its
perplexity ``exp(nats)`` per token (every token of the held-out stream but its first, each
predicted from the carry of the whole stream before it).

Example:
    >>> import jax
    >>> from rnnlab import cells, language_model as lm
    >>> from rnnlab.data import text
    >>> from rnnlab.train import OptimizerConfig
    >>> corpus = "abcabcabcabcabcabcabcabcabcabcabcabcabcabc" * 8
    >>> vocab = text.Vocabulary.from_text(corpus)
    >>> stream = text.token_stream(corpus, vocab)
    >>> model = lm.char_model(cells.gru(16), vocab.size)
    >>> settings = lm.LMSettings(window=8, batch_size=4, steps=60, eval_every=30,
    ...                          optimizer=OptimizerConfig("adam", learning_rate=1e-2))
    >>> result = lm.train_language_model(model, stream, stream, settings, jax.random.key(0))
    >>> result.best_bpc < 0.2           # the cycle is learned: under 0.2 bits per character (from 2)
    True
    >>> lm.sample(model, result.params, vocab, jax.random.key(1), prompt="ab", length=6, temperature=0)
    'abcabcab'
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnnlab import _checks
from rnnlab import checkpoint as _ckpt
from rnnlab.data.text import Lanes, TokenStream, Vocabulary, lanes
from rnnlab.models import SequenceModel, sequence_model
from rnnlab.progress import Progress
from rnnlab.train import (
    OptimizerConfig,
    TrainState,
    check_schedule_length,
    init_state,
    make_optimizer,
    make_train_step,
)


@dataclasses.dataclass(frozen=True)
class LMSettings:
    """How :func:`train_language_model` trains.

    Attributes:
        window: truncated-BPTT length ``L``: steps per window, the farthest the gradient reaches.
        batch_size: lanes ``B`` trained side by side.
        steps: the most training steps (one window per step; an epoch is ``n / L`` steps).
        eval_every: steps between validation evaluations.
        patience: evaluations without improvement after which training stops (None: never).
        optimizer: the update rule (clipping included).
        eval_batch_size: lanes of the held-out stream; 1 (default) scores it in one continuous pass.
        eval_window: steps per compiled window when evaluating (memory only; the carry runs on).
        l2: penalty on the weight matrices.
    """

    window: int = 64
    batch_size: int = 32
    steps: int = 2000
    eval_every: int = 200
    patience: int | None = None
    optimizer: OptimizerConfig = OptimizerConfig("adam", learning_rate=2e-3, clip="global_norm", clip_value=5.0)
    eval_batch_size: int = 1
    eval_window: int = 256
    l2: float = 0.0

    def __post_init__(self):
        where = "LMSettings"
        for name in ("window", "batch_size", "steps", "eval_every", "eval_batch_size", "eval_window"):
            _checks.positive_int(where, name, getattr(self, name))
        if self.patience is not None:
            _checks.positive_int(where, "patience", self.patience)
        _checks.nonnegative(where, "l2", self.l2)


def char_model(core, vocab_size: int) -> SequenceModel:
    """``core`` (a cell, stack, ...) reading one-hot tokens, with a readout to ``vocab_size`` logits.

    Initialize with ``model.init(key, input_size=vocab_size)``.
    """
    return sequence_model(core, _checks.positive_int("char_model", "vocab_size", vocab_size))


class _Window(NamedTuple):
    inputs: jax.Array  # (B, L) int
    targets: jax.Array  # (B, L) int
    resets: jax.Array  # (B, L) bool
    mask: jax.Array  # (B, L) bool


def _window_nll(model: SequenceModel, params, carry, window: _Window, dropout_key=None):
    """``(per-token nats (B, L), final carry)`` of one window read from ``carry``."""
    B = window.inputs.shape[0]
    xs = jax.nn.one_hot(window.inputs, model.output_size, dtype=jax.tree.leaves(params)[0].dtype)
    fresh = model.core.initial_carry(params.core, (B,))
    final, ys = model.hidden(params, xs, initial_carry=carry, resets=window.resets, reset_carry=fresh,
                             dropout_key=dropout_key)  # fmt: skip
    logits = model.readout(params, ys)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, window.targets)
    return jnp.where(window.mask, nll, 0.0), final


def _slice(arrays: Lanes, k, L: int) -> _Window:
    return _Window(*(jax.lax.dynamic_slice_in_dim(a, k * L, L, axis=1) for a in arrays))


@functools.lru_cache(maxsize=16)
def _optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    return make_optimizer(config)


@functools.lru_cache(maxsize=16)
def _trainer(model: SequenceModel, optimizer: optax.GradientTransformation, window: int, l2: float) -> Callable:
    """``run(state, carry, key, lanes, first_step, length)``: ``length`` train steps as one ``lax.scan``."""

    def loss_fn(params, batch, key):
        carry, win = batch
        nll, final = _window_nll(model, params, carry, win, key)
        return jnp.sum(nll) / jnp.maximum(jnp.sum(win.mask), 1), final

    step = make_train_step(loss_fn, optimizer, l2=l2, jit=False, has_aux=True)

    @functools.partial(jax.jit, static_argnums=5)
    def run(state, carry, key, arrays: Lanes, first_step, length):
        K = arrays.inputs.shape[1] // window

        def body(c, s):
            state, carry = c
            state, metrics, carry = step(state, (carry, _slice(arrays, s % K, window)), jax.random.fold_in(key, s))
            return (state, jax.lax.stop_gradient(carry)), (metrics["loss"], metrics["grad_norm"])

        return jax.lax.scan(body, (state, carry), first_step + jnp.arange(length))

    return run


@functools.lru_cache(maxsize=16)
def _scorer(model: SequenceModel, window: int) -> Callable:
    @jax.jit
    def score(params, arrays: Lanes):
        B, n = arrays.inputs.shape

        def body(carry, k):
            nll, carry = _window_nll(model, params, carry, _slice(arrays, k, window))
            return carry, nll

        _, nll = jax.lax.scan(body, model.core.initial_carry(params.core, (B,)), jnp.arange(n // window))
        return jnp.moveaxis(nll, 0, 1).reshape(B, n)  # (K, B, L) -> (B, n)

    return score


def token_nats(model: SequenceModel, params, stream: TokenStream, *, batch_size: int = 1, window: int = 256):
    """``(N - 1,)`` float64: ``-log p(x_t | x_{<t})`` in nats for tokens ``1 .. N-1`` of ``stream``, in order.

    With ``batch_size = 1`` (default) the stream is read in one continuous pass, every token
    predicted from the carry of everything before it (reset only at document starts). More lanes
    (:func:`~rnnlab.data.text.lanes` with ``cover``) run faster on wide hardware, but each lane
    starts from a fresh carry in the middle of the text, which is not the same measurement: a
    128-unit LSTM restarted mid-speech on Tiny Shakespeare stayed near 9 bits per character for a
    whole lane of 3,500 characters, where the continuous pass scores it under 3.
    """
    laid = lanes(stream, batch_size, window, cover=True)
    nll = np.asarray(_scorer(model, window)(params, Lanes(*map(jnp.asarray, laid))), np.float64)
    return nll[laid.mask]


def evaluate(model: SequenceModel, params, stream: TokenStream, *, batch_size: int = 1, window: int = 256) -> dict:
    """``{"nats", "bits_per_char", "perplexity", "tokens"}`` of ``stream`` (see :func:`token_nats`): means per
    token, so with a byte vocabulary ``bits_per_char`` is bits per byte."""
    nats = token_nats(model, params, stream, batch_size=batch_size, window=window)
    mean = float(np.mean(nats))
    return {"nats": mean, "bits_per_char": mean / math.log(2), "perplexity": math.exp(mean), "tokens": int(nats.size)}


class LMResult(NamedTuple):
    """What :func:`train_language_model` returns.

    Attributes:
        params: the parameters at the best validation bits per character.
        history: ``"step"`` ``(S,)``, ``"train_bpc"`` and ``"grad_norm"`` ``(S,)`` per training step
            (the window's mean), ``"eval_step"`` ``(E,)`` and ``"val_bpc"`` ``(E,)`` (step 0 first).
        best_step, best_bpc: where and what the best validation score was.
        diverged_step: the first step whose loss or gradient norm was not finite; -1 if none.
        steps: training steps run.
        seconds: wall time of the training loop, evaluations included.
    """

    params: object
    history: dict
    best_step: int
    best_bpc: float
    diverged_step: int
    steps: int
    seconds: float


def train_language_model(
    model: SequenceModel,
    train: TokenStream,
    validation: TokenStream,
    settings: LMSettings,
    key: jax.Array,
    *,
    progress: bool | str = False,
    checkpoint: _ckpt.Checkpointer | None = None,
) -> LMResult:
    """Trains ``model`` on ``train`` statefully with truncated BPTT, scoring ``validation`` every ``eval_every`` steps.

    The carry runs on from window to window and across evaluations; after the last window of the
    lanes training wraps to the first (every lane starts with a reset). Training stops at
    ``settings.steps``, after ``patience`` evaluations without a better validation score, or at a
    non-finite loss or gradient (its step is in ``diverged_step``; a warning names it).

    With a :class:`~rnnlab.checkpoint.Checkpointer` (default: the enclosing
    :func:`rnnlab.checkpoint.scope`'s, if any) the loop's state is saved at its evaluations:
    parameters, optimizer state, the carry, the step (which also fixes the position in the lanes),
    the best parameters so far and the curves. A new call with the same arguments continues from
    the newest checkpoint and ends as an uninterrupted run would, bit for bit.

    Args:
        progress: False for silence; True or a label for a progress line.
        checkpoint: see above.
    """
    if not isinstance(settings, LMSettings):
        raise TypeError(f"train_language_model: settings must be LMSettings; got {type(settings).__name__}")
    check_schedule_length("train_language_model", settings.optimizer, settings.steps)
    s = settings
    laid = lanes(train, s.batch_size, s.window)
    arrays = Lanes(*map(jnp.asarray, laid))
    k_init, k_train = jax.random.split(key)
    optimizer = _optimizer(s.optimizer)  # the same object for the same config: the compiled trainer is reused
    state: TrainState = init_state(model.init(k_init, model.output_size), optimizer)
    carry = model.core.initial_carry(state.params.core, (s.batch_size,))
    run = _trainer(model, optimizer, s.window, float(s.l2))

    def val_bpc(params) -> float:
        return evaluate(model, params, validation, batch_size=s.eval_batch_size, window=s.eval_window)["bits_per_char"]

    start = time.perf_counter()
    bar = Progress(s.steps, progress if isinstance(progress, str) else "lm", enabled=bool(progress))
    if checkpoint is None:
        checkpoint = _ckpt.next_checkpointer()
    loop = {"state": state, "carry": carry, "best_params": state.params, "key": k_train,
            "counts": np.zeros(4, np.int64), "best_bpc": np.asarray(0.0)}  # fmt: skip
    restored = checkpoint.restore(loop) if checkpoint is not None else None
    if restored is None:
        best_params, best_bpc, best_step = state.params, val_bpc(state.params), 0
        losses, norms, eval_steps, evals = [], [], [0], [best_bpc]
        done, bad, diverged = 0, 0, -1
    else:
        _, loop, log = restored
        checkpoint.check_keys("train_language_model", loop["key"], k_train)
        state, carry, best_params = loop["state"], loop["carry"], loop["best_params"]
        done, best_step, bad, diverged = (int(v) for v in loop["counts"])
        best_bpc = float(loop["best_bpc"])
        losses, norms = [log["train_bpc"]], [log["grad_norm"]]
        eval_steps, evals = list(log["eval_step"]), list(log["val_bpc"])
        bar.update(done, f"resumed at step {done}")
    finished = diverged >= 0 or (s.patience is not None and bad >= s.patience)
    while done < s.steps and not finished:
        length = min(s.eval_every, s.steps - done)
        (state, carry), (loss, norm) = run(state, carry, k_train, arrays, done, length)
        loss, norm = np.asarray(loss, np.float64), np.asarray(norm, np.float64)
        bad_steps = np.flatnonzero(~(np.isfinite(loss) & np.isfinite(norm)))
        losses.append(loss / math.log(2))
        norms.append(norm)
        if bad_steps.size:
            diverged = done + int(bad_steps[0]) + 1
            done += length
            warnings.warn(f"train_language_model: non-finite loss or gradient at step {diverged}; stopped",
                          RuntimeWarning, stacklevel=2)  # fmt: skip
            break
        done += length
        bpc = val_bpc(state.params)
        eval_steps.append(done)
        evals.append(bpc)
        if bpc < best_bpc:
            best_params, best_bpc, best_step, bad = state.params, bpc, done, 0
        else:
            bad += 1
        bar.update(done, f"train {losses[-1][-1]:.3f} val {bpc:.3f} bpc")
        finished = s.patience is not None and bad >= s.patience
        if checkpoint is not None:
            loop = {"state": state, "carry": carry, "best_params": best_params, "key": k_train,
                    "counts": np.asarray([done, best_step, bad, diverged], np.int64),
                    "best_bpc": np.asarray(best_bpc)}  # fmt: skip
            log = {"train_bpc": np.concatenate(losses), "grad_norm": np.concatenate(norms),
                   "eval_step": np.asarray(eval_steps), "val_bpc": np.asarray(evals)}  # fmt: skip
            checkpoint.maybe_save(done, loop, log)
    bar.close(f"best val {best_bpc:.3f} bpc at step {best_step}")
    if checkpoint is not None:
        checkpoint.close()
    history = {
        "step": np.arange(1, done + 1),
        "train_bpc": np.concatenate(losses),
        "grad_norm": np.concatenate(norms),
        "eval_step": np.asarray(eval_steps),
        "val_bpc": np.asarray(evals),
    }
    return LMResult(best_params, history, best_step, best_bpc, diverged, done, time.perf_counter() - start)


@functools.lru_cache(maxsize=16)
def _sampler(model: SequenceModel, length: int) -> Callable:
    @jax.jit
    def generate(params, carry, last, key, temperature):
        dtype = jax.tree.leaves(params)[0].dtype

        def body(c, k):
            carry, token = c
            x = jax.nn.one_hot(token, model.output_size, dtype=dtype)[:, None]  # (1, 1, V)
            carry, ys = model.hidden(params, x, initial_carry=carry)
            logits = model.readout(params, ys[:, 0])[0]
            drawn = jax.random.categorical(k, logits / jnp.maximum(temperature, 1e-6))
            token = jnp.where(temperature > 0, drawn, jnp.argmax(logits)).astype(token.dtype)
            return (carry, token[None]), token

        _, tokens = jax.lax.scan(body, (carry, last), jax.random.split(key, length))
        return tokens

    return generate


def sample(
    model: SequenceModel,
    params,
    vocab: Vocabulary,
    key: jax.Array,
    *,
    prompt: str,
    length: int,
    temperature: float = 1.0,
) -> str:
    """``prompt`` followed by ``length`` tokens drawn one at a time from the model, decoded.

    Each token is drawn from ``softmax(logits / temperature)``: 1 samples the model's own
    distribution, lower values sharpen it, and 0 takes the most likely token every time (greedy).
    """
    where = "sample"
    length = _checks.positive_int(where, "length", length)
    temperature = _checks.nonnegative(where, "temperature", temperature)  # 0 is greedy
    ids = vocab.encode(prompt)
    if ids.size == 0:
        raise ValueError(f"{where}: prompt must hold at least one token; got {prompt!r}")
    dtype = jax.tree.leaves(params)[0].dtype
    carry = model.core.initial_carry(params.core, (1,))
    if ids.size > 1:
        xs = jax.nn.one_hot(jnp.asarray(ids[None, :-1]), model.output_size, dtype=dtype)
        carry, _ = model.hidden(params, xs, initial_carry=carry)
    last = jnp.asarray(ids[-1:], jnp.int32)
    tokens = _sampler(model, length)(params, carry, last, key, jnp.asarray(temperature, dtype))
    return prompt + vocab.decode(np.asarray(tokens))
