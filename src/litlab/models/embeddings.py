"""Word vectors and their use: nearest words, analogy and similarity benchmarks, the word2vec text format.

The benchmark files are read in their standard formats: analogies as in word2vec's `questions-words.txt`
(`: section` lines, then `a b c d` meaning a is to b as c is to d), word similarity as in WordSim-353's
tab-separated `word1<TAB>word2<TAB>score` (lines starting with `#` are comments). Scoring follows gensim's
`evaluate_word_analogies` and `evaluate_word_pairs`, so figures compare with gensim's.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import Tensor


@dataclass
class AnalogyResult:
    """Share of answered analogies whose answer is the nearest word to b - a + c (a, b, c excluded)."""

    accuracy: float
    correct: int
    total: int  # questions whose four words are all in the (restricted) vocabulary
    skipped: int  # questions with a word out of it
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)  # section: (correct, total)


@dataclass
class SimilarityResult:
    """Spearman correlation between cosine similarity and human scores over the pairs in the vocabulary."""

    spearman: float
    pairs: int
    skipped: int


class WordVectors:
    """A vocabulary and its vectors (one row per word, most frequent words first)."""

    def __init__(self, words: list[str], vectors: Tensor):
        if len(words) != len(vectors):
            raise ValueError(f"{len(words)} words but {len(vectors)} vectors: the two must pair up one to one.")
        self.words = list(words)
        self.vectors = vectors.detach().float().cpu()
        self.index = {word: i for i, word in enumerate(self.words)}
        self.unit = torch.nn.functional.normalize(self.vectors, dim=1)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> Tensor:
        return self.vectors[self._id(word)]

    def _id(self, word: str) -> int:
        if word not in self.index:
            raise KeyError(f"'{word}' is not in the vocabulary: it is rarer than data.min_count or not in the corpus.")
        return self.index[word]

    def most_similar(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The k words nearest to `word` by cosine similarity, the word itself left out, nearest first."""
        i = self._id(word)
        similarity = self.unit @ self.unit[i]
        similarity[i] = -float("inf")
        values, ids = similarity.topk(min(k, len(self) - 1))
        return [(self.words[j], float(v)) for j, v in zip(ids.tolist(), values.tolist(), strict=True)]

    def analogy(self, a: str, b: str, c: str, k: int = 10) -> list[tuple[str, float]]:
        """The k words d nearest to b - a + c ("a is to b as c is to d", 3CosAdd), a, b and c left out."""
        ids = [self._id(word) for word in (a, b, c)]
        query = self.unit[ids[1]] - self.unit[ids[0]] + self.unit[ids[2]]
        similarity = self.unit @ torch.nn.functional.normalize(query, dim=0)
        similarity[ids] = -float("inf")
        values, found = similarity.topk(min(k, len(self) - 3))
        return [(self.words[j], float(v)) for j, v in zip(found.tolist(), values.tolist(), strict=True)]

    def analogy_accuracy(self, path: str | Path, restrict: int = 300_000, lowercase: bool = True) -> AnalogyResult:
        """Accuracy on an analogy file, answers searched among the `restrict` most frequent words (3CosAdd)."""
        index = {w: i for w, i in self.index.items() if i < restrict}
        sections: dict[str, list[list[int]]] = {}
        section, skipped = "", 0
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.startswith(":"):
                section = line[1:].strip()
                continue
            words = (line.lower() if lowercase else line).split()
            if len(words) != 4:
                continue
            if all(w in index for w in words):
                sections.setdefault(section, []).append([index[w] for w in words])
            else:
                skipped += 1
        unit = self.unit[: min(restrict, len(self))]
        counts = {}
        for name, questions in sections.items():
            q = torch.tensor(questions)
            a, b, c, d = q.unbind(1)
            scores = (unit[b] - unit[a] + unit[c]) @ unit.T
            scores.scatter_(1, q[:, :3], -float("inf"))
            counts[name] = (int((scores.argmax(1) == d).sum()), len(q))
        correct, total = sum(c for c, _ in counts.values()), sum(t for _, t in counts.values())
        return AnalogyResult(correct / total if total else float("nan"), correct, total, skipped, counts)

    def similarity_spearman(self, path: str | Path, lowercase: bool = True) -> SimilarityResult:
        """Spearman correlation with a word-similarity file's human scores (pairs out of vocabulary skipped)."""
        ours, theirs, skipped = [], [], 0
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            a, b = (p.strip().lower() if lowercase else p.strip() for p in parts[:2])
            if a in self.index and b in self.index:
                ours.append(float(self.unit[self.index[a]] @ self.unit[self.index[b]]))
                theirs.append(float(parts[2]))
            else:
                skipped += 1
        rho = float(spearmanr(ours, theirs).statistic) if len(ours) > 1 else float("nan")
        return SimilarityResult(rho, len(ours), skipped)

    def save_word2vec(self, path: str | Path) -> Path:
        """Writes the word2vec text format (a `count dim` header, then `word v1 v2 ...` per line)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f"{len(self)} {self.vectors.shape[1]}\n")
            for word, row in zip(self.words, self.vectors.numpy(), strict=True):
                handle.write(word + " " + " ".join(f"{x:.6g}" for x in row) + "\n")
        return path

    @classmethod
    def load_word2vec(cls, path: str | Path) -> "WordVectors":
        """Reads the word2vec text format, as written by `save_word2vec`, word2vec.c or gensim."""
        with open(path, encoding="utf-8") as handle:
            header = handle.readline().split()
            if len(header) != 2 or not all(h.isdigit() for h in header):
                raise ValueError(f"'{path}' is not in the word2vec text format: its first line must be `count dim`.")
            count, dim = map(int, header)
            words, rows = [], []
            for line in handle:
                word, *values = line.rstrip("\n").split(" ")
                if len(values) != dim:
                    raise ValueError(f"'{path}': the vector of '{word}' has {len(values)} values, not {dim}.")
                words.append(word)
                rows.append(values)
        if len(words) != count:
            raise ValueError(f"'{path}' announces {count} words but holds {len(words)}.")
        return cls(words, torch.from_numpy(np.asarray(rows, dtype=np.float32).reshape(count, dim)))
