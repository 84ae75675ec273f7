"""The text pipeline (litlab.data.text) on small corpora and fixed tensors: what each knob and default does.

Kept apart from tests/models/test_word2vec.py (the model): these tests import nothing but the data side, so the mutation
run of data/text.py (mutation/config.toml) stays short.
"""

import inspect
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from litlab import ROOT_DIR
from litlab.data.base import DatasetNotFoundError
from litlab.data.text import (
    TEXT8_MD5,
    TEXT8_URL,
    SkipGramPairs,
    TextCorpusDataModule,
    Vocabulary,
    download_text8,
    keep_probabilities,
    read_sentences,
    skipgram_pairs,
)


def letters(i: int) -> str:
    """A word of letters only naming the number i (the default tokeniser drops digits): 0 -> wa, 12 -> wbc."""
    return "w" + "".join(chr(97 + int(d)) for d in str(i))


def pairs_of(batches) -> list[tuple[int, int]]:
    return sorted((c, x) for batch in batches for c, x in zip(batch[0].tolist(), batch[1].tolist(), strict=True))


def test_long_lines_are_cut_every_10000_words_by_default(tmp_path):
    # word2vec.c and gensim cut text8 (one line of 17 million words) into sentences of 10,000 words.
    (tmp_path / "exact.txt").write_text(" ".join(["word"] * 10_000) + "\n")
    (tmp_path / "over.txt").write_text(" ".join(["word"] * 10_001) + "\n")
    assert [len(s) for s in read_sentences(tmp_path / "exact.txt")] == [10_000]
    assert [len(s) for s in read_sentences(tmp_path / "over.txt")] == [10_000, 1]


def test_each_file_without_words_is_named_once(tmp_path, caplog):
    (tmp_path / "a.txt").write_text("some words here\n" * 300)  # many sentences before the empty files
    (tmp_path / "b.txt").write_text("")
    (tmp_path / "c.txt").write_text("1984 -- 2001\n")  # no letters: no words
    (tmp_path / "d.txt").write_text("more words\n")
    with caplog.at_level("WARNING"):
        sentences = read_sentences(tmp_path)
    assert len(sentences) == 301
    warned = [r.getMessage() for r in caplog.records if "holds no words" in r.getMessage()]
    assert len(warned) == 2 and "b.txt'" in warned[0] and "c.txt'" in warned[1]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.txt").write_text("...\n")
    with pytest.raises(ValueError, match="The corpus '.*empty' holds no words: set data.corpus to a text file"):
        read_sentences(empty)


def test_a_binary_corpus_file_is_refused_naming_the_line(tmp_path):
    binary = tmp_path / "dump.txt"
    binary.write_bytes(b"fine words\nstill fine\nbad \x00 bytes\n")
    with pytest.raises(ValueError, match=r"'.*dump.txt' is not UTF-8 text \(line 3 holds NUL bytes\): set data.corpus"):
        read_sentences(binary)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\u00e9 cr\u00e8me\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"'.*latin1.txt' is not UTF-8 text \(.*codec can't decode"):
        read_sentences(latin1)


def test_vocabulary_keeps_words_seen_min_count_times_word2vec_c_default_five():
    sentences = [["five"] * 5 + ["four"] * 4, ["three"] * 3]
    assert Vocabulary.build(sentences).words == ["five"]  # word2vec.c's and gensim's min_count is 5
    assert Vocabulary.build(sentences, min_count=3).words == ["five", "four", "three"]  # a count equal to it stays


def test_a_threshold_of_zero_or_below_keeps_every_word():
    counts = torch.tensor([900, 90, 10])
    for sample in (0.0, -1e-3):
        assert torch.equal(keep_probabilities(counts, sample), torch.ones(3))
    assert keep_probabilities(counts, 1e-3)[0] < 0.1


def test_pairs_stay_within_sentences_whatever_their_numbers():
    # Sentences numbered out of order (7, 2, 5, 2): a run of words is cut wherever the number changes.
    sentence_ids = torch.tensor([7] * 4 + [2] * 3 + [5] * 3 + [2] * 2)
    ids = torch.arange(len(sentence_ids))
    centres, contexts = skipgram_pairs(ids, sentence_ids, window=1, generator=torch.Generator().manual_seed(0))
    neighbours = {(i, i + 1) for i in range(len(ids) - 1) if sentence_ids[i] == sentence_ids[i + 1]}
    expected = sorted(neighbours | {(j, i) for i, j in neighbours})
    assert sorted(zip(centres.tolist(), contexts.tolist(), strict=True)) == expected
    # An offset longer than the run adds nothing: two words give their two pairs under any window.
    two = skipgram_pairs(ids[:2], torch.zeros(2, dtype=torch.long), 5, torch.Generator().manual_seed(0))
    assert sorted(zip(two[0].tolist(), two[1].tolist(), strict=True)) == [(0, 1), (1, 0)]


def test_every_pair_is_batched_once_and_progress_counts_the_words_consumed():
    # 250 words in chunks of 100, 100 and 50: window 1 and no subsampling give 198, 198 and 98 pairs, in
    # batches of 66: three, three and two batches.
    ids = torch.arange(250)
    dataset = SkipGramPairs(ids, torch.zeros_like(ids), torch.ones(250), window=1, batch_size=66, chunk_words=100)
    batches = list(dataset)
    assert [len(b[0]) for b in batches] == [66, 66, 66, 66, 66, 66, 66, 32]
    # Each batch's progress is its chunk's start plus its share of the chunk, over the corpus' words.
    consumed = [100 / 3, 200 / 3, 100, 100 + 100 / 3, 100 + 200 / 3, 200, 225, 250]
    assert [b[2].item() for b in batches] == pytest.approx([words / 250 for words in consumed])
    # Every pair of neighbours within a chunk, both ways, once; chunks are windowed apart.
    within = [(i, i + 1) for i in range(249) if i // 100 == (i + 1) // 100]
    assert pairs_of(batches) == sorted(within + [(j, i) for i, j in within])


def test_a_corpus_is_windowed_a_million_words_at_a_time_by_default():
    # Only the word 1 is kept (its keep rate is 1, word 0's is 0), at positions 999,998 to 1,000,001: two
    # neighbours at the end of the first chunk of a million words, two at the start of the second.
    ids = torch.zeros(1_000_002, dtype=torch.long)
    ids[999_998:] = 1
    dataset = SkipGramPairs(ids, torch.zeros_like(ids), torch.tensor([0.0, 1.0]), window=1, batch_size=100)
    batches = list(dataset)
    assert [len(b[0]) for b in batches] == [2, 2]
    assert [b[2].item() for b in batches] == pytest.approx([1_000_000 / 1_000_002, 1.0], rel=1e-7)


def _passes(dataset: SkipGramPairs, count: int) -> list[tuple]:
    return [tuple(pairs_of(dataset)) for _ in range(count)]


def test_unseeded_passes_draw_afresh_in_every_process_and_seeded_ones_repeat(monkeypatch):
    ids = torch.arange(40)
    keep = torch.full((40,), 0.5)
    seeded = SkipGramPairs(ids, torch.zeros_like(ids), keep, window=3, batch_size=1000, seed=5)
    assert len(set(_passes(seeded, 3))) == 1
    reseeded = SkipGramPairs(ids, torch.zeros_like(ids), keep, window=3, batch_size=1000, seed=6)
    assert _passes(reseeded, 1) != _passes(seeded, 1)
    torch.manual_seed(0)  # the unseeded passes draw their seeds from torch's global generator
    dataset = SkipGramPairs(ids, torch.zeros_like(ids), keep, window=3, batch_size=1000, chunk_words=20)
    for worker in (None, SimpleNamespace(id=0, num_workers=1), SimpleNamespace(id=1, num_workers=2)):
        if worker is not None:
            monkeypatch.setattr("litlab.data.text.get_worker_info", lambda w=worker: w)
        passes = _passes(dataset, 30)
        assert len(set(passes)) == 30  # thirty epochs, thirty different subsamples and windows


@pytest.fixture
def lines_corpus(tmp_path) -> Path:
    """200 lines of the same 12 words in order (a line is a sentence), each word once per line."""
    path = tmp_path / "lines.txt"
    path.write_text(("one two three four five six seven eight nine ten eleven twelve\n") * 200)
    return path


def test_held_out_splits_are_drawn_the_same_each_time_in_batches_of_eval_batch_size(lines_corpus):
    common = {"corpus": str(lines_corpus), "sample": 0.0, "window": 2, "val_fraction": 0.1, "test_fraction": 0.1}
    dm = TextCorpusDataModule(batch_size=40, eval_batch_size=25, **common)
    dm.setup("fit")
    for loader in (dm.val_dataloader, dm.test_dataloader):
        first, again = list(loader()), list(loader())
        assert {len(b[0]) for b in first[:-1]} == {25}
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    train = [len(b[0]) for b in dm.train_dataloader()]
    assert set(train[:-1]) == {40}
    # Without eval_batch_size, evaluation batches are training-sized.
    dm = TextCorpusDataModule(batch_size=40, **common)
    dm.setup("fit")
    assert {len(b[0]) for b in list(dm.val_dataloader())[:-1]} == {40}
    assert {len(b[0]) for b in list(dm.test_dataloader())[:-1]} == {40}


def test_a_single_worker_is_kept_between_epochs(lines_corpus):
    dm = TextCorpusDataModule(corpus=str(lines_corpus), num_workers=1)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert (loader.num_workers, loader.persistent_workers) == (1, True)


def test_text8_named_in_a_config_file_is_read_and_downloaded_from_data_dir(tmp_path, monkeypatch):
    fetched = []
    monkeypatch.setattr("litlab.data.text.download_text8", lambda root: fetched.append(root))
    # A name read from a config file is a string built at run time, not the module's own literal.
    name = OmegaConf.create({"corpus": "text" + str(8)}).corpus
    dm = TextCorpusDataModule(corpus=name, data_dir=str(tmp_path), download=False)
    assert dm.corpus_path == tmp_path / "text8"
    with pytest.raises(DatasetNotFoundError, match="The text8 corpus is missing and data.download=false"):
        dm.setup("fit")
    TextCorpusDataModule(corpus=name, data_dir=str(tmp_path)).prepare_data()
    assert fetched == [tmp_path]


def test_a_missing_corpus_file_is_never_replaced_by_text8(tmp_path, monkeypatch):
    fetched = []
    monkeypatch.setattr("litlab.data.text.download_text8", lambda root: fetched.append(root))
    monkeypatch.chdir(tmp_path)
    for corpus in (str(tmp_path / "missing.txt"), "words.txt", "abc.txt"):  # names either side of "text8"
        dm = TextCorpusDataModule(corpus=corpus, data_dir=str(tmp_path / "data"), download=True)
        assert dm.corpus_path == Path(corpus)
        dm.prepare_data()
        with pytest.raises(DatasetNotFoundError, match=f"Corpus '{corpus}' does not exist: set data.corpus"):
            dm.setup("fit")
    assert fetched == []
    (tmp_path / "words.txt").write_text("a relative path is read from the working directory\n")
    dm = TextCorpusDataModule(corpus="words.txt", min_count=1, val_fraction=0.0, test_fraction=0.0)
    dm.setup("fit")
    assert "relative" in dm.vocab.words


def _fake_download(archive_text: str | None, calls: list):
    """Stands in for torchvision's download_url: writes a real zip archive holding `text8`, or fails."""

    def download_url(url, root, filename=None, md5=None):
        calls.append((url, root, filename, md5))
        if archive_text is None:
            raise RuntimeError("File not found or corrupted.")  # torchvision's answer to a wrong checksum
        with zipfile.ZipFile(Path(root) / filename, "w") as archive:
            archive.writestr("text8", archive_text)

    return download_url


def test_text8_is_fetched_with_its_checksum_and_unzipped(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("torchvision.datasets.utils.download_url", _fake_download(" anarchism originated", calls))
    path = download_text8(tmp_path)
    assert path == tmp_path / "text8" and path.read_text() == " anarchism originated"
    assert calls == [(TEXT8_URL, str(tmp_path), "text8.zip", TEXT8_MD5)]
    monkeypatch.setattr("torchvision.datasets.utils.download_url", _fake_download(None, calls))
    with pytest.raises(DatasetNotFoundError, match=r"could not be downloaded .*\(RuntimeError\): place the unzipped"):
        download_text8(tmp_path / "other")


def test_the_defaults_are_the_shipped_config_s_and_do_what_it_says(tmp_path, monkeypatch):
    # Built from Python (a notebook, another script), the datamodule behaves as configs/data/corpus.yaml says.
    shipped = OmegaConf.to_container(OmegaConf.load(Path(ROOT_DIR) / "configs" / "data" / "corpus.yaml"))
    for name in ("_target_", "corpus", "data_dir"):  # the paths are the run's
        del shipped[name]
    parameters = inspect.signature(TextCorpusDataModule).parameters
    assert {name: parameters[name].default for name in shipped} == shipped
    # What they do: 600 lines, each "the" and then the next 20 of 600 words in a cycle (every word 20 times);
    # "Mixed" and "mixed" three times each; words seen 5 and 4 times; one line of 10,001 words.
    cycle = [letters(i) for i in range(600)]
    lines = [" ".join(["the", *(cycle[(20 * j + k) % 600] for k in range(20))]) for j in range(600)]
    lines += ["Mixed mixed fivefold fourfold"] * 3 + ["fivefold fourfold", "fivefold the", " ".join(["long"] * 10_001)]
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n")
    dm = TextCorpusDataModule(corpus=str(tmp_path / "corpus.txt"))
    dm.setup("fit")
    words = set(dm.vocab.words)
    assert {"mixed", "fivefold"} <= words and not {"Mixed", "fourfold"} & words  # lower-cased; min_count 5
    index = dm.vocab.index()
    # sample 1e-3 thins "the" (under 3% of the words) and keeps each rare word
    assert torch.equal(dm.keep, keep_probabilities(dm.vocab.counts, 1e-3))
    assert dm.keep[index["the"]] < 0.5 and dm.keep[index[cycle[0]]] == 1.0
    # the long line is cut after 10,000 words: two sentences
    long_sentences = dm.splits["train"][1][dm.splits["train"][0] == index["long"]]
    assert sorted(torch.bincount(long_sentences).tolist())[-2:] == [1, 10_000]
    # 1% of the 607 sentences held out for each of validation and test, drawn with split_seed 42
    assert [len(dm.splits[s][1].unique()) for s in ("val", "test")] == [6, 6]
    same = TextCorpusDataModule(corpus=str(tmp_path / "corpus.txt"), split_seed=42)
    same.setup("fit")
    assert all(torch.equal(dm.splits[s][0], same.splits[s][0]) for s in ("train", "val", "test"))
    loader = dm.train_dataloader()
    assert (loader.num_workers, loader.pin_memory, loader.persistent_workers) == (0, False, False)
    batches = list(loader)
    assert {len(b[0]) for b in batches[:-1]} == {8192}
    # window 5: the words of the cycle meet at distances 1 to 5 along it
    position = {w: i for i, w in enumerate(cycle)}
    along = torch.tensor([position.get(w, -1) for w in dm.vocab.words])
    centres, contexts = (along[torch.cat([b[i] for b in batches])] for i in (0, 1))
    gaps = (centres - contexts)[(centres >= 0) & (contexts >= 0)] % 600
    assert set(torch.minimum(gaps, 600 - gaps).tolist()) == {1, 2, 3, 4, 5}
    fetched = []
    monkeypatch.setattr("litlab.data.text.download_text8", lambda root: fetched.append(root))
    TextCorpusDataModule(data_dir=str(tmp_path / "data")).prepare_data()  # text8, downloaded when missing
    assert fetched == [tmp_path / "data"]


def test_the_datamodule_leaves_hyperparameter_logging_to_the_run(lines_corpus):
    # train.py logs the composed config once; the datamodule must not add its arguments (paths, worker counts)
    # to the logger's record behind its back.
    import lightning as L
    from lightning.pytorch.loggers import Logger

    from litlab.models.word2vec import Word2Vec

    class Recorder(Logger):
        name, version = "recorder", 0

        def __init__(self):
            super().__init__()
            self.logged = []

        def log_hyperparams(self, params, *args, **kwargs):
            self.logged.append(dict(params))

        def log_metrics(self, metrics, step=None):
            pass

    dm = TextCorpusDataModule(corpus=str(lines_corpus), min_count=1, val_fraction=0.0, test_fraction=0.0)
    recorder = Recorder()
    trainer = L.Trainer(
        max_epochs=1, limit_train_batches=1, limit_val_batches=0, accelerator="cpu", logger=recorder,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(Word2Vec(embedding_dim=4, vectors_file=None), datamodule=dm)
    assert not any("corpus" in params for params in recorder.logged)


@pytest.mark.parametrize("name", ["val_fraction", "test_fraction"])
def test_held_out_fractions_must_leave_sentences_to_train_on(name):
    for value in (1.0, 1.5, -0.5):
        with pytest.raises(ValueError, match=rf"data.{name} must be in \[0, 1\), got {value}."):
            TextCorpusDataModule(corpus="corpus.txt", **{name: value})
