"""Text data for sequence GANs: a word vocabulary for caption corpora and the SeqGAN oracle.

* :class:`Vocab`: id 0 is the padding token ``<pad>`` (also the generator's start input), id 1
  the end token ``<eos>``, then the corpus' words in order of first appearance. A sentence
  encodes to ``[w_1 .. w_k, <eos>, <pad> ...]`` of a fixed length (longer sentences are cut to
  ``max_len - 1`` words); decoding stops at the first ``<eos>`` or ``<pad>``. Saved with a run as
  ``vocab.json`` (``{"tokenize": name, "tokens": [...]}``; a plain list, the format before the
  tokenizer was saved, reads as space-split), so samples decode to text and a run's evaluation
  splits new text as its training did.
* :func:`load_corpus` reads one sentence per line, lower-cased and split into words by
  :func:`word_tokens` (Texygen tokenises the Image-COCO captions with ``nltk.word_tokenize``:
  punctuation and clitics are tokens of their own, so "a wheel." is ``a wheel .``; the vocabulary
  is 6,619 tokens instead of 8,849 for a plain split on spaces) or by spaces (``tokenize="space"``);
  :func:`load_coco` builds the vocabulary of the training and test captions (as Texygen does)
  and encodes both.
* :func:`load_oracle` reads the SeqGAN oracle's ``target_params.npz`` (an LSTM with vocabulary
  5,000, embedding and hidden 32) into the fused parameter dict of :mod:`jaxgen.nets.text`;
  :func:`oracle_data` samples its training set (10,000 sequences of 20 tokens, as in the paper)
  and :func:`oracle_nll` scores sequences (NLL-oracle).

Every unreadable or malformed file is one :class:`~jaxgen.core.errors.DataError` sentence
naming the file and what was expected.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.core.errors import DataError
from jaxgen.nets import text as T

PAD, EOS = 0, 1
SPECIALS = ("<pad>", "<eos>")
VOCAB_FILE = "vocab.json"

#: the oracle task of the SeqGAN paper
ORACLE_VOCAB, ORACLE_LEN, ORACLE_START = 5000, 20, 0
ORACLE_TRAIN = 10_000
ORACLE_SEED = 88  # the training set's sampling seed (fixed: every run sees the same data)


def shared_data_dir() -> Path:
    """``../shared/data`` beside the project (the small real data sets of the project)."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


# --------------------------------------------------------------------------- words

class Vocab:
    """A token list with ``<pad>`` = 0 and ``<eos>`` = 1; see the module docstring.
    ``tokenize``: the name of the tokenizer its sentences were split with (:data:`TOKENIZERS`),
    saved with it so a run's evaluation reads new text the same way (None: not known)."""

    def __init__(self, tokens: Sequence[str], tokenize: str | None = None):
        tokens = list(tokens)
        if tokens[:2] != list(SPECIALS):
            raise DataError(f"a vocabulary must start with {SPECIALS[0]} and {SPECIALS[1]}; got {tokens[:2]}.")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}
        self.tokenize = tokenize

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, sentences: Sequence[Sequence[str]], tokenize: str | None = None) -> "Vocab":
        seen = dict.fromkeys(SPECIALS)
        for s in sentences:
            seen.update(dict.fromkeys(s))
        return cls(list(seen), tokenize)

    def encode(self, sentences: Sequence[Sequence[str]], max_len: int) -> np.ndarray:
        """``int32 [N, max_len]``; an unknown word is a DataError naming it."""
        out = np.full((len(sentences), max_len), PAD, np.int32)
        for i, s in enumerate(sentences):
            words = list(s)[: max_len - 1]
            try:
                out[i, : len(words)] = [self.index[w] for w in words]
            except KeyError as e:
                raise DataError(f"word {e.args[0]!r} of sentence {i} is not in the vocabulary of "
                                f"{len(self)} tokens; build the vocabulary from every corpus it encodes.") from None
            out[i, len(words)] = EOS
        return out

    def decode(self, ids) -> list[list[str]]:
        """Token lists of ``ids int [N, L]``, each cut at its first ``<eos>`` / ``<pad>``."""
        ids = np.asarray(ids)
        out = []
        for row in ids:
            stop = np.flatnonzero(row <= EOS)
            row = row[: stop[0]] if len(stop) else row
            out.append([self.tokens[i] for i in row])
        return out

    def decode_text(self, ids) -> list[str]:
        return [" ".join(s) for s in self.decode(ids)]

    def save(self, run_dir: Path) -> Path:
        path = Path(run_dir) / VOCAB_FILE
        path.write_text(json.dumps({"tokenize": self.tokenize, "tokens": self.tokens}))
        return path

    @classmethod
    def load(cls, run_dir: Path) -> "Vocab":
        path = Path(run_dir) / VOCAB_FILE
        try:
            saved = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise DataError(f"{path} is not a readable vocabulary; expected the JSON vocabulary "
                            "that jaxgen train seqgan --task coco writes.") from None
        # a plain list: written before the tokenizer was saved, when captions were split on spaces
        tokens, tokenize = (saved, "space") if isinstance(saved, list) else (saved.get("tokens"), saved.get("tokenize"))
        if not (isinstance(tokens, list) and all(isinstance(t, str) for t in tokens)) or \
                not (tokenize is None or tokenize in TOKENIZERS):
            raise DataError(f"{path} is not a vocabulary; expected {{\"tokenize\": one of {', '.join(TOKENIZERS)}, "
                            "\"tokens\": a list of token strings}.")
        return cls(tokens, tokenize)


def canonical(ids: jax.Array) -> jax.Array:
    """Generated ``int [..., L]`` with every token after the first ``<eos>`` or ``<pad>`` set to
    ``<pad>`` (and that one to ``<eos>``), the form real encoded sentences have."""
    end = jnp.cumsum(ids <= EOS, axis=-1)
    first = (end == 1) & (ids <= EOS)
    return jnp.where(end == 0, ids, jnp.where(first, EOS, PAD)).astype(ids.dtype)


_PUNCT = re.compile(r'([,;:!?()\[\]{}&$#@%"])')
_IN_NUMBER = re.compile(r"(\d) ([,:]) (\d)")  # 1,000 and 11:59 stay one token
_FINAL_PERIOD = re.compile(r"(?<!\.)\.(\s*(?:[\])}'\"]\s*)*)$")
_CLITIC = re.compile(r"(?<=\w)('s|'m|'d|'ll|'re|'ve|n't)\b")
_TRAILING_QUOTE = re.compile(r"(?<=\w)'(?=\s|$)")


def word_tokens(line: str) -> list[str]:
    """Penn-Treebank-style words of one lower-cased sentence: punctuation ``, ; : ! ? ( ) " &``
    .. and the sentence's final period are tokens of their own, so are the clitics ``'s 'm 'd
    'll 're 've n't``; hyphens, slashes and inner periods stay inside words. Agrees with
    nltk's ``TreebankWordTokenizer`` on 99.9 % of the Image-COCO captions (it also rewrites
    double quotes as `` and '')."""
    s = _PUNCT.sub(r" \1 ", " " + line.lower().strip() + " ")
    s = _IN_NUMBER.sub(r"\1\2\3", s)
    s = _FINAL_PERIOD.sub(r" .\1", s.rstrip())
    s = _CLITIC.sub(r" \1", s)
    return _TRAILING_QUOTE.sub(" '", s).split()


TOKENIZERS = {"words": word_tokens, "space": str.split}


def load_corpus(path: str | Path, tokenize: str = "words") -> list[list[str]]:
    """One sentence per line (empty lines skipped), split by ``TOKENIZERS[tokenize]``:
    ``words`` (:func:`word_tokens`, lower-cased) or ``space`` (the line as it is, split on spaces)."""
    if tokenize not in TOKENIZERS:
        raise DataError(f"tokenize={tokenize!r} is not a tokenizer; accepted: {', '.join(TOKENIZERS)}.")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"the corpus {path} does not exist; expected a text file with one sentence per line.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"the corpus {path} is not readable UTF-8 text ({type(e).__name__}); expected a text file "
                        "with one sentence per line.") from None
    sentences = [TOKENIZERS[tokenize](line) for line in text.splitlines() if line.strip()]
    if not sentences:
        raise DataError(f"the corpus {path} holds no sentence; expected a text file with one sentence per line.")
    return sentences


def coco_dir(data_dir: str | Path | None = None) -> Path:
    return Path(data_dir) if data_dir else shared_data_dir() / "coco_captions"


def load_coco(data_dir: str | Path | None = None, max_len: int = 0, limit: int | None = None,
              tokenize: str = "words") -> dict:
    """The Image-COCO captions: ``{"train": int32 [N, L], "test": int32 [M, L], "vocab": Vocab,
    "train_text", "test_text"}`` (token lists). ``max_len`` 0: the longest caption plus the end
    token. ``limit``: only the first this many captions of each split. ``tokenize``: see
    :func:`load_corpus` (``words``, the default, is Texygen's tokenisation)."""
    d = coco_dir(data_dir)
    train = load_corpus(d / "image_coco.txt", tokenize)[:limit]
    test = load_corpus(d / "test_coco.txt", tokenize)[:limit]
    vocab = Vocab.build(train + test, tokenize)
    length = max_len or max(len(s) for s in train + test) + 1
    return {"train": vocab.encode(train, length), "test": vocab.encode(test, length), "vocab": vocab,
            "train_text": train, "test_text": test}


# --------------------------------------------------------------------------- the oracle

def oracle_path(data_dir: str | Path | None = None) -> Path:
    return (Path(data_dir) if data_dir else shared_data_dir() / "seqgan_oracle") / "target_params.npz"


def load_oracle(path: str | Path | None = None) -> dict:
    """The oracle's fused LSTM parameters (:func:`jaxgen.nets.text.oracle_params`)."""
    path = Path(path) if path is not None else oracle_path()
    expected = "the SeqGAN oracle's target_params.npz (float32 g_embeddings, Wi/Ui/bi, Wf/Uf/bf, Wog/Uog/bog, Wc/Uc/bc, Wo, bo)"
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(f"the oracle file {path} does not exist; expected {expected}.") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        raise DataError(f"the oracle file {path} is not a readable npz; expected {expected}.") from None
    missing = [k for k in T.ORACLE_ARRAYS if k not in arrays]
    if missing:
        raise DataError(f"the oracle file {path} lacks {', '.join(missing)}; expected {expected}.")
    v, e = arrays["g_embeddings"].shape if arrays["g_embeddings"].ndim == 2 else (0, 0)
    h = arrays["Ui"].shape[0] if arrays["Ui"].ndim == 2 else 0
    dims = {"V": v, "E": e, "H": h}
    for k, axes in T.ORACLE_ARRAYS.items():
        want = tuple(dims[a] for a in axes)
        if arrays[k].shape != want or not np.issubdtype(arrays[k].dtype, np.floating):
            raise DataError(f"the oracle file {path} holds {k} of shape {arrays[k].shape} ({arrays[k].dtype}); "
                            f"expected a float array of shape {want}.")
    return T.oracle_params(arrays)


def oracle_sample(params: dict, key: jax.Array, n: int, length: int = ORACLE_LEN, start: int = ORACLE_START,
                  batch: int = 2000) -> jax.Array:
    """``n`` oracle sequences, ``int32 [n, length]``, drawn ``batch`` at a time."""
    chunks = -(-n // batch)
    keys = jax.random.split(key, chunks)
    out = jax.lax.map(lambda k: T.sample(params, k, batch, length, start), keys)
    return out.reshape(-1, length)[:n]


_oracle_sample = jax.jit(oracle_sample, static_argnums=(2, 3, 4, 5))


def oracle_nll(params: dict, tokens: jax.Array, start: int = ORACLE_START) -> jax.Array:
    """NLL-oracle: the mean over tokens of ``-log p_oracle`` of ``tokens int [N, L]``."""
    return T.nll(params, tokens, start)


def oracle_data(params: dict | None = None, n_train: int = ORACLE_TRAIN, n_test: int = 2000,
                seed: int = ORACLE_SEED, length: int = ORACLE_LEN) -> dict:
    """The oracle task's data: ``{"train": int32 [n_train, length], "test": int32 [n_test, length]}``
    sampled from the oracle with a fixed seed (``test``: held-out sequences for NLL-test).
    ``length``: 20 in SeqGAN's experiment; LeakGAN's long-text experiments also use 40 (the same
    oracle, longer sequences)."""
    params = load_oracle() if params is None else params
    key_train, key_test = jax.random.split(jax.random.PRNGKey(seed))
    return {"train": _oracle_sample(params, key_train, n_train, length, ORACLE_START, 2000),
            "test": _oracle_sample(params, key_test, n_test, length, ORACLE_START, 1000)}


__all__ = ["Vocab", "PAD", "EOS", "canonical", "word_tokens", "TOKENIZERS", "load_corpus", "load_coco", "load_oracle", "oracle_sample",
           "oracle_nll", "oracle_data", "ORACLE_VOCAB", "ORACLE_LEN", "ORACLE_START", "VOCAB_FILE"]
