"""A text corpus as skip-gram (centre, context) pairs: tokeniser, vocabulary, subsampling, dynamic windows.

The corpus lives in memory as one int64 tensor of word ids. Every epoch draws a fresh subsample and fresh
window sizes and turns a chunk of the corpus into pairs with a few tensor operations per window offset, so
the input side costs little next to the training step.
"""

import re
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from litlab.data.base import DatasetNotFoundError, require_positive_ints
from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)

TEXT8_URL = "http://mattmahoney.net/dc/text8.zip"
TEXT8_MD5 = "f26f94c5209bc6159618bad4a559ff81"

# Runs of letters (any alphabet): everything else (digits, punctuation, spaces) separates words.
DEFAULT_TOKEN_PATTERN = r"[^\W\d_]+"


def tokenize(text: str, lowercase: bool = True, token_pattern: str = DEFAULT_TOKEN_PATTERN) -> list[str]:
    """Splits text into words: lower-cased (unless `lowercase=False`), each word a match of `token_pattern`."""
    if lowercase:
        text = text.lower()
    return re.findall(token_pattern, text)


def corpus_files(path: Path) -> list[Path]:
    """The files of a corpus: the file itself, or every file in the folder (recursively, in name order)."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [path]


def read_sentences(
    path: str | Path,
    lowercase: bool = True,
    token_pattern: str = DEFAULT_TOKEN_PATTERN,
    max_sentence_length: int = 10_000,
) -> list[list[str]]:
    """Reads a text file, or every file in a folder (recursively, in name order), one sentence per line.

    Context windows never cross a line; lines longer than `max_sentence_length` words are cut into pieces
    (text8 is a single line of 17 million words; gensim and word2vec.c cut it the same way).
    """
    path = Path(path).expanduser()
    sentences = []
    for file in corpus_files(path):
        before = len(sentences)
        for line in _text_lines(file):
            words = tokenize(line, lowercase, token_pattern)
            for start in range(0, len(words), max_sentence_length):
                sentences.append(words[start : start + max_sentence_length])
        if len(sentences) == before:
            log.warning(f"Corpus file '{file}' holds no words (it is empty or has no letters).")
    if not sentences:
        raise ValueError(f"The corpus '{path}' holds no words: set data.corpus to a text file with some text in it.")
    return sentences


def _text_lines(file: Path) -> Iterator[str]:
    """The lines of a UTF-8 text file; a binary file (NUL bytes, or bytes that are not UTF-8) is refused."""
    with open(file, encoding="utf-8") as handle:
        try:
            for number, line in enumerate(handle, start=1):
                if "\x00" in line:
                    raise UnicodeError(f"line {number} holds NUL bytes")
                yield line
        except UnicodeError as err:
            raise ValueError(
                f"Corpus file '{file}' is not UTF-8 text ({err}): set data.corpus to a plain text file "
                "(or a folder of them), not a binary or compressed one."
            ) from None


@dataclass
class Vocabulary:
    """The kept words, most frequent first, with their corpus counts."""

    words: list[str]
    counts: Tensor  # int64, one per word

    @classmethod
    def build(cls, sentences: Sequence[Sequence[str]], min_count: int = 5, max_size: int | None = None) -> "Vocabulary":
        """Keeps the words seen at least `min_count` times (at most `max_size` of them, the most frequent)."""
        counter = Counter(word for sentence in sentences for word in sentence)
        # Ties broken by the word, so that a corpus always gives the same ids.
        kept = sorted(((w, c) for w, c in counter.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
        if max_size is not None:
            kept = kept[:max_size]
        if not kept:
            raise ValueError(
                f"No word occurs at least data.min_count={min_count} times: lower data.min_count or use a "
                "larger corpus."
            )
        return cls([w for w, _ in kept], torch.tensor([c for _, c in kept], dtype=torch.long))

    def __len__(self) -> int:
        return len(self.words)

    def index(self) -> dict[str, int]:
        return {word: i for i, word in enumerate(self.words)}

    def encode(self, sentences: Sequence[Sequence[str]]) -> tuple[Tensor, Tensor]:
        """Word ids of the in-vocabulary words (int64), and the sentence number of each (int64)."""
        index = self.index()
        ids, sentence_ids = [], []
        for n, sentence in enumerate(sentences):
            known = [index[w] for w in sentence if w in index]
            ids.extend(known)
            sentence_ids.extend([n] * len(known))
        return torch.tensor(ids, dtype=torch.long), torch.tensor(sentence_ids, dtype=torch.long)


def keep_probabilities(counts: Tensor, sample: float) -> Tensor:
    """Probability of keeping each occurrence of a word under frequent-word subsampling.

    The formula of word2vec.c and gensim (a smoothed form of Mikolov et al. 2013's 1 - sqrt(t/f)):
    with f = count / total, keep = (sqrt(f / sample) + 1) * sample / f, capped at 1. `sample=0` keeps all.
    """
    if sample <= 0:
        return torch.ones(len(counts))
    threshold = sample * counts.sum().double()
    counts = counts.double()
    return ((torch.sqrt(counts / threshold) + 1) * threshold / counts).clamp(max=1.0).float()


def skipgram_pairs(ids: Tensor, sentence_ids: Tensor, window: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """All (centre, context) pairs of a run of words, with word2vec's dynamic window.

    Each centre draws its own window size uniformly in 1..`window` (so near words count more), and pairs
    never span two sentences. One vectorised pass per offset, no loop over words.
    """
    n = len(ids)
    reach = torch.randint(1, window + 1, (n,), generator=generator)
    centres, contexts = [], []
    for offset in range(1, window + 1):
        if offset >= n:
            break
        # Pairs (i, i + offset) seen from both ends: i's window must reach forward, i + offset's backward.
        same = sentence_ids[:-offset] == sentence_ids[offset:]
        forward = same & (reach[:-offset] >= offset)
        backward = same & (reach[offset:] >= offset)
        left, right = ids[:-offset], ids[offset:]
        centres += [left[forward], right[backward]]
        contexts += [right[forward], left[backward]]
    if not centres:
        return ids.new_empty(0), ids.new_empty(0)
    return torch.cat(centres), torch.cat(contexts)


class SkipGramPairs(IterableDataset):
    """Yields shuffled batches of (centres, contexts, progress), chunk by chunk of the corpus.

    `progress` is the share of the epoch's words consumed so far, which drives the linear learning-rate
    decay of word2vec.c. With `seed` set every pass is the same (for validation and test); otherwise each
    pass subsamples and windows afresh. DataLoader workers split the chunks between them.
    """

    def __init__(
        self,
        ids: Tensor,
        sentence_ids: Tensor,
        keep: Tensor,
        window: int,
        batch_size: int,
        chunk_words: int = 1_000_000,
        seed: int | None = None,
    ):
        self.ids, self.sentence_ids, self.keep = ids, sentence_ids, keep
        self.window, self.batch_size, self.chunk_words, self.seed = window, batch_size, chunk_words, seed

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        generator = torch.Generator()
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker else (0, 1)
        generator.manual_seed(self.seed if self.seed is not None else torch.randint(2**62, ()).item() + worker_id)
        n = len(self.ids)
        for start in range(worker_id * self.chunk_words, n, num_workers * self.chunk_words):
            stop = min(start + self.chunk_words, n)
            ids, sentence_ids = self.ids[start:stop], self.sentence_ids[start:stop]
            # Subsampling drops words before windowing, as word2vec.c does: windows reach past dropped words.
            kept = torch.rand(len(ids), generator=generator) < self.keep[ids]
            centres, contexts = skipgram_pairs(ids[kept], sentence_ids[kept], self.window, generator)
            order = torch.randperm(len(centres), generator=generator)
            centres, contexts = centres[order], contexts[order]
            batches = range(0, len(centres), self.batch_size)
            for k, first in enumerate(batches):
                progress = (start + (stop - start) * (k + 1) / len(batches)) / n
                last = first + self.batch_size
                yield centres[first:last], contexts[first:last], torch.tensor(progress)


class TextCorpusDataModule(LightningDataModule):
    """A text corpus for word2vec: a file, a folder of files, or text8 (downloaded when missing).

    Tokenisation: each line is a sentence; it is lower-cased (`lowercase`) and its words are the matches of
    `token_pattern` (default: runs of letters, so digits and punctuation separate words). A share of the
    sentences is held out for validation and test losses.

    Args:
        corpus: a path to a text file or a folder of them, or `text8` for `data_dir/text8`.
        data_dir: where text8 is read from and downloaded to.
        download: fetch text8 when it is missing.
        min_count: words seen fewer times are dropped from the corpus.
        max_vocab: keep at most this many of the most frequent words (None: no limit).
        sample: subsampling threshold of frequent words (0 turns it off; 1e-3 to 1e-5 are usual).
        window: the largest context window on each side; each centre draws its own in 1..window.
        batch_size: (centre, context) pairs per training step.
        val_fraction, test_fraction: shares of the sentences held out (chosen with `split_seed`).
        chunk_words: words turned into pairs at a time (bounds memory on large corpora).
    """

    def __init__(
        self,
        corpus: str = "text8",
        data_dir: str = "data/",
        download: bool = True,
        lowercase: bool = True,
        token_pattern: str = DEFAULT_TOKEN_PATTERN,
        max_sentence_length: int = 10_000,
        min_count: int = 5,
        max_vocab: int | None = None,
        sample: float = 1e-3,
        window: int = 5,
        batch_size: int = 8192,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.01,
        test_fraction: float = 0.01,
        split_seed: int = 42,
        chunk_words: int = 1_000_000,
        num_workers: int = 0,
        pin_memory: bool = False,
    ):
        super().__init__()
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"data.{name} must be in [0, 1), got {value}.")
        require_positive_ints(
            window=window, batch_size=batch_size, eval_batch_size=eval_batch_size, min_count=min_count
        )
        self.save_hyperparameters(logger=False)
        self.vocab: Vocabulary | None = None
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}

    @property
    def corpus_path(self) -> Path:
        if self.hparams.corpus == "text8":
            return Path(self.hparams.data_dir).expanduser() / "text8"
        return Path(self.hparams.corpus).expanduser()

    def source_files(self) -> list[Path]:
        """The corpus files this datamodule reads (recorded with their hashes in the run record)."""
        return corpus_files(self.corpus_path)

    def prepare_data(self) -> None:
        if self.hparams.corpus == "text8" and not self.corpus_path.exists() and self.hparams.download:
            download_text8(self.corpus_path.parent)

    def setup(self, stage: str | None = None) -> None:
        if self.vocab is not None:
            return
        path = self.corpus_path
        if not path.exists():
            if self.hparams.corpus == "text8":
                why = "is missing and data.download=false" if not self.hparams.download else "is missing"
                raise DatasetNotFoundError(
                    f"The text8 corpus {why}: place the unzipped file `text8` in {path.parent.resolve()} "
                    "(or set paths.data_dir to the folder that holds it), or pass data.corpus=<path to a text file>."
                )
            raise DatasetNotFoundError(
                f"Corpus '{path}' does not exist: set data.corpus to a text file or a folder of text files."
            )
        hp = self.hparams
        sentences = read_sentences(path, hp.lowercase, hp.token_pattern, hp.max_sentence_length)
        order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(hp.split_seed)).tolist()
        n_val, n_test = round(hp.val_fraction * len(sentences)), round(hp.test_fraction * len(sentences))
        # Held-out sentences keep corpus order among themselves; training keeps the corpus order too.
        held_val, held_test = set(order[:n_val]), set(order[n_val : n_val + n_test])
        parts = {"train": [], "val": [], "test": []}
        for i, sentence in enumerate(sentences):
            parts["val" if i in held_val else "test" if i in held_test else "train"].append(sentence)
        self.vocab = Vocabulary.build(parts["train"], hp.min_count, hp.max_vocab)
        self.splits = {name: self.vocab.encode(part) for name, part in parts.items()}
        self.keep = keep_probabilities(self.vocab.counts, hp.sample)

    @property
    def num_train_words(self) -> int:
        """In-vocabulary words of the training split (before subsampling)."""
        if self.vocab is None:
            self.setup("fit")
        return len(self.splits["train"][0])

    def _loader(self, split: str) -> DataLoader:
        ids, sentence_ids = self.splits[split]
        if len(ids) == 0:
            raise ValueError(
                f"The {split} split holds no in-vocabulary words: raise data.{split}_fraction, or turn {split} "
                f"off (trainer.limit_{split}_batches=0)."
            )
        hp = self.hparams
        train = split == "train"
        dataset = SkipGramPairs(
            ids,
            sentence_ids,
            self.keep,
            hp.window,
            hp.batch_size if train else (hp.eval_batch_size or hp.batch_size),
            hp.chunk_words,
            seed=None if train else hp.split_seed,
        )
        return DataLoader(
            dataset,
            batch_size=None,
            num_workers=hp.num_workers,
            pin_memory=hp.pin_memory,
            persistent_workers=hp.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


def download_text8(root: str | Path) -> Path:
    """Downloads and unzips text8 (Matt Mahoney's first 100 MB of cleaned English Wikipedia) into `root`."""
    from torchvision.datasets.utils import download_url

    root = Path(root).expanduser()
    try:
        download_url(TEXT8_URL, str(root), "text8.zip", md5=TEXT8_MD5)
    except (OSError, RuntimeError) as err:
        raise DatasetNotFoundError(
            f"text8 could not be downloaded from {TEXT8_URL} ({type(err).__name__}): place the unzipped file "
            f"`text8` in {root.resolve()}, or pass data.corpus=<path to a text file>."
        ) from None
    with zipfile.ZipFile(root / "text8.zip") as archive:
        archive.extractall(root)
    return root / "text8"
