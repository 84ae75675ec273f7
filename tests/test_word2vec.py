import math
from pathlib import Path
from urllib.error import URLError

import pytest
import torch

from litlab.data.base import DatasetNotFoundError
from litlab.data.text import (
    SkipGramPairs,
    TextCorpusDataModule,
    Vocabulary,
    keep_probabilities,
    read_sentences,
    skipgram_pairs,
    tokenize,
)
from litlab.eval import evaluate
from litlab.models.embeddings import WordVectors
from litlab.models.word2vec import Word2Vec
from litlab.train import train
from tests.helpers.config import eval_config, train_config
from tests.helpers.corpus import FUNCTION_WORDS, topic_words, write_topic_corpus


@pytest.fixture(scope="module")
def topic_corpus(tmp_path_factory) -> Path:
    return write_topic_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt")


def test_tokenizer_lower_cases_and_splits_on_non_letters():
    assert tokenize("Hello, World! It's 3am: naïve café") == ["hello", "world", "it", "s", "am", "naïve", "café"]
    assert tokenize("Hello World", lowercase=False) == ["Hello", "World"]
    assert tokenize("it's well-known", token_pattern=r"[\w'-]+") == ["it's", "well-known"]


def test_folder_corpus_vocabulary_and_sentence_boundaries(tmp_path):
    (tmp_path / "b.txt").write_text("cat dog cat\nfish\n")
    (tmp_path / "a.txt").write_text("Dog dog cat bird dog\n")
    sentences = read_sentences(tmp_path)
    assert sentences == [["dog", "dog", "cat", "bird", "dog"], ["cat", "dog", "cat"], ["fish"]]
    assert read_sentences(tmp_path / "a.txt", max_sentence_length=3) == [["dog", "dog", "cat"], ["bird", "dog"]]
    vocab = Vocabulary.build(sentences, min_count=2)
    assert vocab.words == ["dog", "cat"] and vocab.counts.tolist() == [4, 3]  # most frequent first
    ids, sentence_ids = vocab.encode(sentences)
    assert ids.tolist() == [0, 0, 1, 0, 1, 0, 1] and sentence_ids.tolist() == [0, 0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="lower data.min_count"):
        Vocabulary.build(sentences, min_count=10)


def test_subsampling_follows_the_word2vec_formula():
    counts = torch.tensor([500_000, 50_000, 1_000, 10])
    keep = keep_probabilities(counts, sample=1e-3)
    for count, p in zip(counts.tolist(), keep.tolist(), strict=True):
        f = count / counts.sum().item()
        assert p == pytest.approx(min(1.0, (math.sqrt(f / 1e-3) + 1) * 1e-3 / f), rel=1e-5)
    assert keep[-1] == 1.0 and keep[0] < 0.1
    assert torch.equal(keep_probabilities(counts, sample=0), torch.ones(4))
    # The datamodule's draw keeps each word at its rate: with window 1 every kept word pairs with neighbours.
    ids = torch.cat([torch.zeros(20_000, dtype=torch.long), torch.ones(20_000, dtype=torch.long)])
    ids = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(0))]
    rates = torch.tensor([0.2, 1.0])
    dataset = SkipGramPairs(ids, torch.zeros_like(ids), rates, window=1, batch_size=10**6, seed=0)
    centres = next(iter(dataset))[0]
    kept = torch.bincount(centres, minlength=2).float()
    # each kept word is a centre about twice (left and right neighbour), so the ratio of kept counts shows
    assert (kept[0] / kept[1]).item() == pytest.approx(0.2, abs=0.02)


def test_dynamic_window_pairs_stay_in_sentences_and_favour_near_words():
    n = 30_000
    ids = torch.arange(n)
    sentence_ids = torch.arange(n) // 10
    centres, contexts = skipgram_pairs(ids, sentence_ids, window=3, generator=torch.Generator().manual_seed(0))
    distance = (centres - contexts).abs()
    assert distance.min() >= 1 and distance.max() <= 3
    assert torch.equal(sentence_ids[centres], sentence_ids[contexts])  # no pair crosses a sentence
    # A centre's window reaches distance d with probability (window - d + 1) / window: 1, 2/3, 1/3.
    per_sentence = torch.bincount(distance, minlength=4)[1:].float() / (n // 10)
    expected = torch.tensor([2 * 9 * 1.0, 2 * 8 * 2 / 3, 2 * 7 * 1 / 3])
    assert torch.allclose(per_sentence, expected, rtol=0.05)


def test_negatives_follow_the_unigram_distribution_to_the_power_075():
    counts = torch.tensor([1000, 300, 100, 10, 1])
    model = Word2Vec(embedding_dim=8, negatives=5)
    model.build(["a", "b", "c", "d", "e"], counts)
    draws = model.sample_negatives((200_000,), torch.Generator().manual_seed(0))
    observed = torch.bincount(draws, minlength=5).float() / len(draws)
    expected = counts.double() ** 0.75 / (counts.double() ** 0.75).sum()
    assert torch.allclose(observed.double(), expected, atol=0.005)


def test_word2vec_initialisation_and_sparse_gradients():
    model = Word2Vec(embedding_dim=20, negatives=3, negatives_group=4)
    model.build([f"w{i}" for i in range(50)], torch.arange(50, 0, -1))
    assert model.input_embeddings.weight.abs().max() <= 0.5 / 20
    assert model.output_embeddings.weight.abs().max() == 0
    loss = model(torch.tensor([0, 1, 2, 3, 4]), torch.tensor([5, 6, 7, 8, 9]))
    # zero output vectors score 0 everywhere: each pair's loss is (1 + noise words) * log 2, bar collisions
    assert loss.item() <= 5 * 4 * math.log(2) + 1e-4
    loss.backward()
    assert model.input_embeddings.weight.grad.is_sparse and model.output_embeddings.weight.grad.is_sparse
    assert set(model.input_embeddings.weight.grad.coalesce().indices()[0].tolist()) == {0, 1, 2, 3, 4}


def test_word2vec_learns_topics_saves_vectors_and_evaluates_from_checkpoint(tmp_path, topic_corpus):
    questions = tmp_path / "questions-words.txt"
    topics = topic_words()
    a, b = topics[0], topics[1]
    questions.write_text(f": topics\n{a[0]} {a[1]} {b[0]} {b[1]}\n{a[0]} {a[2]} unknown {b[2]}\n")
    similarity = tmp_path / "wordsim.tsv"
    similarity.write_text(
        f"# Word 1\tWord 2\tHuman (mean)\n{a[0]}\t{a[1]}\t9.0\n{a[0]}\t{b[0]}\t1.0\n{a[3]}\t{a[4]}\t8.5\n"
    )
    cfg = train_config(
        [
            "experiment=word2vec_corpus",
            f"data.corpus={topic_corpus}",
            "data.min_count=1",
            "data.batch_size=2048",
            "data.val_fraction=0.05",
            "data.test_fraction=0.05",
            "model.embedding_dim=16",
            "model.projector_words=30",
            f"model.analogy_path={questions}",
            f"model.similarity_path={similarity}",
            "trainer.max_epochs=4",
        ],
        tmp_path / "train",
    )
    metrics, objects = train(cfg)
    model: Word2Vec = objects["model"]
    assert metrics["val/loss"] < 0.8 * 6 * math.log(2)  # untrained, every pair scores 6 log 2
    assert -1.0 <= metrics["test/similarity_spearman"] <= 1.0 and 0.0 <= metrics["test/analogy_acc"] <= 1.0

    # nearest neighbours of a topic word are its topic-mates
    for topic in topics:
        neighbours = [word for word, _ in model.most_similar(topic[0], k=5)]
        assert sum(word in topic for word in neighbours) >= 4, (topic[0], neighbours)

    # the word2vec text file loads back, and TensorBoard got its projector files
    saved = WordVectors.load_word2vec(tmp_path / "train" / "word_vectors.txt")
    assert saved.words == model.words and torch.allclose(saved.vectors, model.word_vectors().vectors, atol=1e-5)
    assert saved.words[0] in FUNCTION_WORDS
    projector = list((tmp_path / "train" / "tensorboard").rglob("metadata.tsv"))
    assert projector and len(projector[0].read_text().split()) == 30

    # the checkpoint alone rebuilds model and corpus
    best = objects["trainer"].checkpoint_callback.best_model_path
    eval_metrics, eval_objects = evaluate(eval_config([f"ckpt_path={best}"], tmp_path / "eval"))
    assert eval_objects["model"].words == model.words
    assert float(eval_metrics["test/loss"]) == pytest.approx(float(metrics["test/loss"]), abs=1e-5)


@pytest.mark.parametrize("name", ["word2vec_corpus", "word2vec_text8"])
def test_word2vec_experiments_run_one_batch(name, tmp_path, topic_corpus):
    cfg = train_config(
        [f"experiment={name}", f"data.corpus={topic_corpus}", "data.min_count=1", "trainer.fast_dev_run=true"],
        tmp_path,
    )
    metrics, _ = train(cfg)
    assert "test/loss" in metrics and "train/loss" in metrics


def test_analogy_and_similarity_scores_in_the_standard_formats(tmp_path):
    words = ["king", "queen", "man", "woman", "paris", "france", "rome", "italy"]
    # gender along one axis, capital-of along another: king - man + woman = queen, paris - france + italy = rome
    vectors = torch.tensor(
        [
            [1, 1, 0, 0],
            [1, -1, 0, 0],
            [0.2, 1, 0, 0],
            [0.2, -1, 0, 0],
            [0, 0, 1, 1],
            [0, 0, 1, -1],
            [0, 0.1, 0.6, 1],
            [0, 0.1, 0.6, -1],
        ],
        dtype=torch.float32,
    )
    wv = WordVectors(words, vectors)
    questions = tmp_path / "questions-words.txt"
    questions.write_text(
        ": gender\nKing Queen Man Woman\nman woman king queen\nking queen man dog\n"
        ": capitals\nFrance Paris Italy Rome\nParis France Rome Italy\nfrance paris italy queen\n"
    )
    result = wv.analogy_accuracy(questions)
    assert (result.total, result.skipped) == (5, 1)
    assert result.sections == {"gender": (2, 2), "capitals": (2, 3)} and result.accuracy == pytest.approx(4 / 5)
    similarity = tmp_path / "wordsim353.tsv"
    similarity.write_text(
        "# Word 1\tWord 2\tHuman (mean)\nParis\trome\t9.0\nking\tparis\t1.0\nman\tking\t7.0\nx\ty\t5\n"
    )
    result = wv.similarity_spearman(similarity)
    assert (result.pairs, result.skipped) == (3, 1) and result.spearman == pytest.approx(1.0)
    assert wv.most_similar("paris", 1)[0][0] == "rome" and wv.most_similar("king", 1)[0][0] == "man"
    with pytest.raises(KeyError, match="not in the vocabulary"):
        wv.most_similar("dog")


def test_word2vec_text_format_round_trip_and_errors(tmp_path):
    wv = WordVectors(["a", "b", "c"], torch.randn(3, 5))
    path = wv.save_word2vec(tmp_path / "v.txt")
    assert path.read_text().splitlines()[0] == "3 5"
    back = WordVectors.load_word2vec(path)
    assert back.words == wv.words and torch.allclose(back.vectors, wv.vectors, rtol=1e-5, atol=1e-6)
    (tmp_path / "bad.txt").write_text("a 1 2 3\n")
    with pytest.raises(ValueError, match="first line must be `count dim`"):
        WordVectors.load_word2vec(tmp_path / "bad.txt")


def test_text8_missing_offline_gives_one_clear_error(tmp_path, monkeypatch):
    datamodule = TextCorpusDataModule(corpus="text8", data_dir=str(tmp_path), download=False)
    with pytest.raises(DatasetNotFoundError, match=r"place the unzipped file `text8` in .*data.corpus="):
        datamodule.setup("fit")

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr("torchvision.datasets.utils.download_url", offline)
    datamodule = TextCorpusDataModule(corpus="text8", data_dir=str(tmp_path), download=True)
    with pytest.raises(DatasetNotFoundError, match="could not be downloaded .*URLError.*place the unzipped"):
        datamodule.prepare_data()
    with pytest.raises(DatasetNotFoundError, match="does not exist: set data.corpus"):
        TextCorpusDataModule(corpus=str(tmp_path / "nope.txt")).setup("fit")


def test_sgns_loss_gradients_match_autograd():
    from litlab.models.word2vec import SGNSLoss

    torch.manual_seed(0)
    # 3 groups of 3 pairs, the last pair padding; 2 noise words per group after the 9 context vectors
    centre, outputs = torch.randn(9, 4, dtype=torch.double), torch.randn(9 + 3 * 2, 4, dtype=torch.double)
    valid = torch.arange(9) < 8
    keep = (torch.rand(3, 3, 2) > 0.2) & valid.view(3, 3, 1)
    inputs = [centre.requires_grad_(), outputs.requires_grad_()]
    assert torch.autograd.gradcheck(lambda *x: SGNSLoss.apply(*x, keep, valid), inputs)
    # and the value is the textbook loss
    logsigmoid = torch.nn.functional.logsigmoid
    scores = torch.einsum("gkd,gjd->gjk", outputs[9:].view(3, 2, 4), centre.view(3, 3, 4))
    expected = -(logsigmoid((centre * outputs[:9]).sum(1))[:8].sum() + (logsigmoid(-scores) * keep).sum())
    assert torch.allclose(SGNSLoss.apply(centre, outputs, keep, valid), expected)


def test_divergence_stops_training_with_a_clear_error(topic_corpus):
    import lightning as L

    datamodule = TextCorpusDataModule(corpus=str(topic_corpus), min_count=1)
    datamodule.setup("fit")
    model = Word2Vec(embedding_dim=8, vectors_file=None)
    model.build(datamodule.vocab.words, datamodule.vocab.counts)
    with torch.no_grad():
        model.input_embeddings.weight[0] = float("nan")  # a word blown up by too large steps
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    with pytest.raises(FloatingPointError, match="lower data.batch_size or model.optimizer.lr"):
        trainer.fit(model, datamodule=datamodule)
