import math
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from omegaconf import OmegaConf

from litlab import CONFIG_DIR
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
    (tmp_path / ".hidden.txt").write_text("secret words\n")  # an editor's or a system's file: skipped
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("caf\u00e9 bird\n")  # files in subfolders count, after the others
    sentences = read_sentences(tmp_path)
    assert sentences == [["dog", "dog", "cat", "bird", "dog"], ["cat", "dog", "cat"], ["fish"], ["caf\u00e9", "bird"]]
    sentences = sentences[:3]
    assert read_sentences(tmp_path / "a.txt", max_sentence_length=3) == [["dog", "dog", "cat"], ["bird", "dog"]]
    vocab = Vocabulary.build(sentences, min_count=2)
    assert vocab.words == ["dog", "cat"] and vocab.counts.tolist() == [4, 3]  # most frequent first
    ids, sentence_ids = vocab.encode(sentences)
    assert ids.tolist() == [0, 0, 1, 0, 1, 0, 1] and sentence_ids.tolist() == [0, 0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="lower data.min_count"):
        Vocabulary.build(sentences, min_count=10)
    # Equal counts are ordered by the word, so that a corpus always gives the same ids.
    assert Vocabulary.build([["b", "c", "a", "c", "a", "b"]], min_count=1).words == ["a", "b", "c"]
    assert Vocabulary.build([["b", "c", "a", "c", "a", "b"]], min_count=1, max_size=2).words == ["a", "b"]


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
    assert set(distance.unique().tolist()) == {1, 2, 3}
    one = skipgram_pairs(ids[:1], sentence_ids[:1], window=3, generator=torch.Generator().manual_seed(0))
    assert [len(t) for t in one] == [0, 0]  # a single word has no context
    assert torch.equal(sentence_ids[centres], sentence_ids[contexts])  # no pair crosses a sentence
    # A centre's window reaches distance d with probability (window - d + 1) / window: 1, 2/3, 1/3.
    per_sentence = torch.bincount(distance, minlength=4)[1:].float() / (n // 10)
    expected = torch.tensor([2 * 9 * 1.0, 2 * 8 * 2 / 3, 2 * 7 * 1 / 3])
    assert torch.allclose(per_sentence, expected, rtol=0.05)


@pytest.mark.parametrize("exponent", [0.75, 0.0, 1.0])
def test_negatives_follow_the_unigram_distribution_to_the_power_ns_exponent(exponent):
    counts = torch.tensor([1000, 300, 100, 10, 1])
    model = Word2Vec(embedding_dim=8, negatives=5) if exponent == 0.75 else Word2Vec(8, 5, ns_exponent=exponent)
    model.build(["a", "b", "c", "d", "e"], counts)
    draws = model.sample_negatives((200_000,), torch.Generator().manual_seed(0))
    observed = torch.bincount(draws, minlength=5).float() / len(draws)
    expected = counts.double() ** exponent / (counts.double() ** exponent).sum()
    assert torch.allclose(observed.double(), expected, atol=0.005)


def test_word2vec_defaults_are_those_of_the_model_config():
    # Built in Python or from configs/model/word2vec.yaml, a model gets word2vec.c's settings; only the config
    # shares noise words between pairs (several times faster on a CPU), the class draws them per pair as
    # word2vec.c does.
    config = OmegaConf.to_container(OmegaConf.load(Path(CONFIG_DIR) / "model" / "word2vec.yaml"))
    optimizer = OmegaConf.load(Path(CONFIG_DIR) / "model" / "optimizer" / f"{config['defaults'][0]['optimizer']}.yaml")
    for key in ("_target_", "_recursive_", "defaults"):
        del config[key]
    del optimizer["_partial_"]  # how the config spells a factory: the class does without it
    assert dict(Word2Vec().hparams) == {**config, "optimizer": dict(optimizer), "negatives_group": 1}


def test_word2vec_initialisation_and_sparse_gradients():
    dim = 20
    model = Word2Vec(embedding_dim=dim, negatives=3, negatives_group=4)
    model.build([f"w{i}" for i in range(50)], torch.arange(50, 0, -1))
    # word2vec.c's start: input vectors uniform in +-0.5 / dim, output vectors zero
    weight = model.input_embeddings.weight.detach()
    assert weight.abs().max() <= 0.5 / dim and weight.min() < -0.45 / dim and weight.max() > 0.45 / dim
    assert weight.std().item() == pytest.approx(1 / dim / math.sqrt(12), rel=0.1)
    assert not model.output_embeddings.weight.any()
    contexts = torch.tensor([5, 6, 7, 8, 9])
    loss = model(torch.tensor([0, 1, 2, 3, 4]), contexts, torch.Generator().manual_seed(0))
    # zero output vectors score 0 everywhere: each term counts log 2, and a noise word that is the context none
    noise = model.sample_negatives((2, 3), torch.Generator().manual_seed(0))
    terms = 5 + sum(w != contexts[i].item() for i in range(5) for w in noise[i // 4].tolist())
    assert loss.item() == pytest.approx(terms * math.log(2), rel=1e-6)
    loss.backward()
    assert model.input_embeddings.weight.grad.is_sparse and model.output_embeddings.weight.grad.is_sparse
    assert set(model.input_embeddings.weight.grad.coalesce().indices()[0].tolist()) == {0, 1, 2, 3, 4}
    assert len(model.most_similar("w0")) == 10  # ten neighbours unless asked for more


@pytest.mark.parametrize("group", [1, 2, 3, 5, 8, 16])  # 16: a batch smaller than half a group
def test_forward_is_the_negative_sampling_loss_with_noise_shared_per_group(group):
    torch.manual_seed(0)
    model = Word2Vec(embedding_dim=4, negatives=3, negatives_group=group)
    model.build([f"w{i}" for i in range(8)], torch.tensor([9, 8, 7, 6, 5, 4, 3, 2]))
    with torch.no_grad():
        model.output_embeddings.weight.normal_()
    centres, contexts = torch.tensor([0, 1, 2, 3, 4]), torch.tensor([5, 6, 7, 1, 0])
    loss = model(centres, contexts, torch.Generator().manual_seed(1))
    noise = model.sample_negatives((-(-5 // group), 3), torch.Generator().manual_seed(1))
    v, u = model.input_embeddings.weight.detach(), model.output_embeddings.weight.detach()
    logsigmoid = torch.nn.functional.logsigmoid
    expected = 0.0
    for i, (centre, context) in enumerate(zip(centres.tolist(), contexts.tolist(), strict=True)):
        expected -= logsigmoid(u[context] @ v[centre]).item()
        # the pair's group's noise words, but never its own context word
        expected -= sum(logsigmoid(-u[w] @ v[centre]).item() for w in noise[i // group].tolist() if w != context)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_a_step_touches_only_the_rows_of_its_words_and_their_noise_words():
    # The tables' gradients are sparse: SparseAdam moves every row a step touches, so a batch of whole groups
    # must touch its centres, its contexts and its noise words, no other word.
    model = Word2Vec(embedding_dim=4, negatives=2, negatives_group=2)
    model.build([f"w{i}" for i in range(30)], torch.ones(30))
    centres, contexts = torch.tensor([3, 4, 5, 6]), torch.tensor([7, 8, 9, 10])
    model(centres, contexts, torch.Generator().manual_seed(0)).backward()
    noise = model.sample_negatives((2, 2), torch.Generator().manual_seed(0))

    def rows(table: torch.nn.Embedding) -> set[int]:
        return set(table.weight.grad.coalesce().indices()[0].tolist())

    assert rows(model.input_embeddings) == {3, 4, 5, 6}
    assert rows(model.output_embeddings) == {7, 8, 9, 10} | set(noise.view(-1).tolist())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"optimizer": {"_target_": "torch.optim.Adam"}},
            r"^torch.optim.Adam takes no sparse gradients, which .*: use",
        ),
        ({"optimizer": {"_target_": "torch.optim.sgd.SGD"}, "embedding_dim": 0}, "must be positive, got 0, 5, 1"),
        ({"embedding_dim": 0}, "must be positive, got 0, 5, 1"),
        ({"negatives": 0}, "must be positive, got 100, 0, 1"),
        ({"negatives_group": 0}, "must be positive, got 100, 5, 0"),
    ],
)
def test_bad_word2vec_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Word2Vec(**kwargs)


def test_word2vec_takes_its_vocabulary_from_the_corpus_and_refuses_another(numbered_corpus):
    from types import SimpleNamespace

    dm = TextCorpusDataModule(corpus=str(numbered_corpus), min_count=2, test_fraction=0.1)
    dm.setup("fit")
    model = Word2Vec(embedding_dim=8)
    with pytest.raises(ValueError, match="needs a vocabulary: train it with a TextCorpusDataModule"):
        model._trainer = SimpleNamespace(datamodule=None)
        model.setup("fit")
    model._trainer = SimpleNamespace(datamodule=dm)
    model.setup("fit")
    assert model.words == dm.vocab.words and torch.equal(model.counts, dm.vocab.counts)
    assert model.input_embeddings.weight.shape == (10, 8)
    model._trainer = SimpleNamespace(datamodule=None)
    model.setup("test")  # a model with its vocabulary needs no corpus
    other = TextCorpusDataModule(corpus=str(numbered_corpus), min_count=1, test_fraction=0.1)
    other.setup("fit")
    model._trainer = SimpleNamespace(datamodule=other)
    with pytest.raises(ValueError, match=r"vocabulary \(10 words\) is not the corpus' \(\d+ words\)"):
        model.setup("test")
    # and the other way round: a model of the larger vocabulary refuses the smaller one
    larger = Word2Vec(embedding_dim=8)
    larger._trainer = SimpleNamespace(datamodule=other)
    larger.setup("fit")
    larger._trainer = SimpleNamespace(datamodule=dm)
    with pytest.raises(ValueError, match=r"vocabulary \(\d+ words\) is not the corpus' \(10 words\)"):
        larger.setup("test")


@pytest.mark.parametrize(("max_epochs", "min_lr_ratio"), [(2, None), (2, 0.6), (1, None)])
def test_learning_rate_decays_linearly_with_the_words_consumed(numbered_corpus, max_epochs, min_lr_ratio):
    import lightning as L

    class Record(L.Callback):
        def __init__(self):
            self.seen, self.losses = [], []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            self.seen.append((trainer.current_epoch, batch[2].item(), lr))
            self.losses.append((trainer.current_epoch, outputs["loss"].item(), len(batch[0])))

    dm = TextCorpusDataModule(corpus=str(numbered_corpus), min_count=2, sample=0.0, batch_size=500, test_fraction=0.1)
    ratio = {} if min_lr_ratio is None else {"min_lr_ratio": min_lr_ratio}
    model = Word2Vec(
        embedding_dim=8, vectors_file=None, optimizer={"_target_": "torch.optim.SGD", "lr": 0.005}, **ratio
    )
    record = Record()
    trainer = L.Trainer(
        max_epochs=max_epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, limit_val_batches=0, callbacks=[record], enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    assert len(record.seen) > 2 * max_epochs and record.seen[-1][:2] == (max_epochs - 1, pytest.approx(1.0))
    floor = 1e-4 if min_lr_ratio is None else min_lr_ratio  # word2vec.c's floor by default
    for epoch, progress, lr in record.seen:
        assert lr == pytest.approx(0.005 * max(floor, 1 - (epoch + progress) / max_epochs))
    # train/loss is the last epoch's loss per pair, its batches weighed by their pairs
    last = [(loss, n) for epoch, loss, n in record.losses if epoch == max_epochs - 1]
    expected = sum(loss for loss, _ in last) / sum(n for _, n in last)
    assert trainer.callback_metrics["train/loss"].item() == pytest.approx(expected, rel=1e-5)
    # once an epoch, under its own name, and in the progress bar
    assert set(trainer.logged_metrics) == set(trainer.progress_bar_metrics) == {"train/loss"}


def test_word2vec_hooks_carry_the_vocabulary_through_a_checkpoint():
    words, counts = ["the", "cat", "sat"], torch.tensor([5, 3, 2])
    model = Word2Vec(embedding_dim=4, optimizer={"_target_": "torch.optim.SparseAdam", "lr": 0.01})
    with pytest.raises(ValueError, match="no vocabulary yet: train it or load it from a checkpoint"):
        model.word_vectors()
    model.build(words, counts)
    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)
    fresh = Word2Vec(embedding_dim=4)
    fresh.on_load_checkpoint(checkpoint)  # Lightning calls it before loading the state dict
    fresh.load_state_dict(checkpoint["state_dict"])
    assert fresh.words == words and torch.equal(fresh.counts, counts)
    # the noise distribution is rebuilt from the counts, not stored
    assert set(checkpoint["state_dict"]) == {"counts", "input_embeddings.weight", "output_embeddings.weight"}
    assert torch.equal(fresh.word_vectors().vectors, model.input_embeddings.weight)
    assert fresh.most_similar("the", k=2)[0][0] in {"cat", "sat"}
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SparseAdam) and optimizer.defaults["lr"] == 0.01
    assert isinstance(fresh.configure_optimizers(), torch.optim.SGD)


def test_word2vec_evaluation_draws_the_same_noise_every_time():
    model = Word2Vec(embedding_dim=4, negatives=3)
    model.build([f"w{i}" for i in range(20)], torch.arange(20, 0, -1))
    with torch.no_grad():
        model.output_embeddings.weight.normal_()
    centres, contexts = torch.arange(10), torch.arange(10, 20)
    losses = []
    for _ in range(2):
        model.on_validation_epoch_start()
        losses.append(model(centres, contexts, model.eval_generator).item())
    model.on_test_epoch_start()
    losses.append(model(centres, contexts, model.eval_generator).item())
    assert losses[0] == losses[1] == losses[2]
    assert model(centres, contexts, model.eval_generator).item() != losses[0]  # the stream moves on within one


def test_evaluation_logs_the_loss_per_pair_and_the_benchmark_scores(tmp_path, numbered_corpus, caplog):
    import logging

    import lightning as L

    dm = TextCorpusDataModule(
        corpus=str(numbered_corpus), min_count=2, sample=0.0, eval_batch_size=32, val_fraction=0.1, test_fraction=0.1
    )
    dm.setup("fit")
    words = dm.vocab.words  # the ten words of ALPHABET, in that order (equal counts)
    similarity = tmp_path / "wordsim.tsv"
    similarity.write_text("alpha\tbravo\t9\nalpha\tcharlie\t5\nbravo\tjuliet\t1\ncharlie\tdelta\t3\n")
    analogies = tmp_path / "questions-words.txt"
    analogies.write_text(": letters\nalpha bravo charlie delta\n")

    def model_with(**kwargs) -> Word2Vec:
        model = Word2Vec(embedding_dim=6, negatives=3, **kwargs)
        model.build(words, dm.vocab.counts)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            model.output_embeddings.weight.copy_(torch.randn(10, 6, generator=generator))
            vectors = torch.nn.functional.normalize(torch.randn(10, 6, generator=generator), dim=1)
            # bravo - alpha + charlie is juliet exactly and delta nearly: juliet answers unless left out
            query = vectors[1] - vectors[0] + vectors[2]
            vectors[9] = query
            vectors[3] = query + 0.1 * vectors[4]
            model.input_embeddings.weight.copy_(vectors)
        return model

    def run(model: Word2Vec, stage: str) -> dict[str, float]:
        trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
        (trainer.validate if stage == "val" else trainer.test)(model, datamodule=dm, verbose=False)
        assert ("val/loss" in trainer.progress_bar_metrics) == (stage == "val")  # val/loss shows in the bar
        return {k: v.item() for k, v in trainer.callback_metrics.items()}

    def loss_per_pair(model: Word2Vec, loader) -> float:
        # the loss under the same noise words, summed over the batches, divided by the pairs
        model.on_validation_epoch_start()
        batches = list(loader)
        with torch.no_grad():
            total = sum(model(centres, contexts, model.eval_generator).item() for centres, contexts, _ in batches)
        return total / sum(len(centres) for centres, _, _ in batches)

    def messages() -> str:
        return " ".join(r.getMessage() for r in caplog.records if r.name == "litlab.models.word2vec")

    model = model_with(similarity_path=str(similarity), analogy_path=str(analogies), analogy_restrict=9)
    assert len(list(dm.val_dataloader())) > 1
    spearman = model.word_vectors().similarity_spearman(similarity).spearman
    assert run(model, "val") == {
        "val/loss": pytest.approx(loss_per_pair(model, dm.val_dataloader()), rel=1e-5),
        "val/similarity_spearman": pytest.approx(spearman),
    }
    caplog.set_level(logging.INFO, logger="litlab.models.word2vec")
    assert run(model, "test") == {
        "test/loss": pytest.approx(loss_per_pair(model, dm.test_dataloader()), rel=1e-5),
        "test/similarity_spearman": pytest.approx(spearman),
        "test/analogy_acc": 1.0,  # juliet is not among the 9 most frequent words: delta answers
    }
    assert "Analogies: 1/1 right, 0 out of vocabulary." in messages()
    assert "Word similarity: 4 pairs scored, 0 out of vocabulary." in messages()
    model.hparams.analogy_restrict = 10
    assert run(model, "test")["test/analogy_acc"] == 0.0

    # Files that are named but missing are reported, files not named are not mentioned.
    caplog.clear()
    missing = model_with(similarity_path=str(tmp_path / "none.tsv"), analogy_path=str(tmp_path / "none.txt"))
    assert set(run(missing, "val")) == {"val/loss"} and set(run(missing, "test")) == {"test/loss"}
    assert f"No analogy file at {tmp_path / 'none.txt'}" in messages()
    assert f"No word-similarity file at {tmp_path / 'none.tsv'}" in messages()
    caplog.clear()
    assert set(run(model_with(), "test")) == {"test/loss"} and messages() == ""


def test_end_of_training_writes_the_vectors_file_and_the_projector(tmp_path, numbered_corpus):
    from types import SimpleNamespace

    import lightning as L
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    dm = TextCorpusDataModule(corpus=str(numbered_corpus), min_count=2, test_fraction=0.1)
    runs = {}
    for vectors_file, projector_words in (("vectors.txt", 3), (None, 0)):
        root = tmp_path / str(projector_words)
        model = Word2Vec(embedding_dim=4, vectors_file=vectors_file, projector_words=projector_words)
        csv = CSVLogger(root, name="csv")  # a logger without a projector: skipped
        trainer = L.Trainer(
            max_epochs=1, limit_train_batches=1, limit_val_batches=0, accelerator="cpu", default_root_dir=root,
            logger=[TensorBoardLogger(root), csv], enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False,
        )  # fmt: skip
        trainer.fit(model, datamodule=dm)
        runs[projector_words] = root, model
        # The model sends no hyperparameters of its own: train.py logs the run's comparable ones.
        assert csv.experiment.hparams == {}
    root, model = runs[3]
    saved = WordVectors.load_word2vec(root / "vectors.txt")
    assert saved.words == model.words and torch.allclose(saved.vectors, model.word_vectors().vectors, atol=1e-5)
    (metadata,) = root.rglob("metadata.tsv")  # the three most frequent words
    assert metadata.read_text().split() == model.words[:3]
    root, model = runs[0]
    assert not [p for p in root.rglob("*") if p.suffix in (".txt", ".tsv")]
    # Only the first process writes: the others would write the same files at the same time.
    model.hparams.vectors_file = "vectors.txt"
    model._trainer = SimpleNamespace(is_global_zero=False, default_root_dir=root, loggers=[])
    model.on_fit_end()
    assert not (root / "vectors.txt").exists()


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
    # The cross-topic pair is ranked last, as people rank it; the logged scores are those of the vectors.
    vectors = model.word_vectors()
    assert metrics["test/similarity_spearman"] >= 0.5
    assert metrics["test/similarity_spearman"] == pytest.approx(vectors.similarity_spearman(similarity).spearman)
    assert metrics["test/analogy_acc"] == pytest.approx(vectors.analogy_accuracy(questions, 30_000).accuracy)

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
    # One small step from the start (zero output vectors): each pair still scores about (1 + 5 noise words) log 2.
    for key in ("train/loss", "test/loss"):
        assert float(metrics[key]) == pytest.approx(6 * math.log(2), rel=0.05)


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
    with pytest.raises(DatasetNotFoundError, match=r"is missing and data.download=false: place the unzipped file"):
        datamodule.setup("fit")
    datamodule = TextCorpusDataModule(corpus="text8", data_dir=str(tmp_path), download=True)
    with pytest.raises(DatasetNotFoundError, match=r"The text8 corpus is missing: place .*data.corpus="):
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


ALPHABET = "alpha bravo charlie delta echo foxtrot golf hotel india juliet".split()


def marker(i: int) -> str:
    """A word made of letters only that names line i (the default tokeniser drops digits)."""
    return "line" + "".join(chr(97 + int(d)) for d in str(i))


@pytest.fixture
def numbered_corpus(tmp_path) -> Path:
    # 100 lines: the ten words in order, then the line's own marker.
    path = tmp_path / "numbered.txt"
    path.write_text("".join(f"{' '.join(ALPHABET)} {marker(i)}\n" for i in range(100)))
    return path


def test_corpus_split_holds_out_whole_sentences_and_builds_the_vocabulary_on_training_only(numbered_corpus):
    dm = TextCorpusDataModule(corpus=str(numbered_corpus), min_count=1, val_fraction=0.1, test_fraction=0.2)
    dm.setup("fit")
    markers = {w for w in dm.vocab.words if w.startswith("line")}
    # The held-out lines' markers never reach the vocabulary: 70 training lines, 10 + 20 held out.
    assert len(markers) == 70 and markers != {marker(i) for i in range(70)}
    assert dm.num_train_words == 70 * 11
    for split, lines in (("val", 10), ("test", 20)):
        ids, sentence_ids = dm.splits[split]
        assert len(ids) == lines * 10 and sentence_ids.tolist() == [n for n in range(lines) for _ in range(10)]
    other = TextCorpusDataModule(corpus=str(numbered_corpus), min_count=1, val_fraction=0.1, test_fraction=0.2)
    other.setup("fit")
    assert other.vocab.words == dm.vocab.words
    reseeded = TextCorpusDataModule(corpus=str(numbered_corpus), min_count=1, test_fraction=0.2, split_seed=1)
    reseeded.setup("fit")
    assert {w for w in reseeded.vocab.words if w.startswith("line")} != markers
    dm.setup("test")  # a second setup keeps what the first one built
    assert other.vocab is not None and dm.num_train_words == 70 * 11


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"min_count": 1}, 10 + 100),
        ({"min_count": 2}, 10),  # the markers occur once
        ({"min_count": 1, "max_vocab": 4}, 4),
        ({"min_count": 1, "lowercase": False}, 10 + 100 + 1),  # "Alpha" of the last line is a word of its own
        ({"min_count": 1, "token_pattern": r"[a-z]+\d*"}, 10 + 100 + 1),  # keeps "golf9" whole
        ({"min_count": 1, "max_sentence_length": 4}, 10 + 100),
    ],
)
def test_each_vocabulary_knob_of_the_corpus_reaches_it(tmp_path, numbered_corpus, kwargs, words):
    text = numbered_corpus.read_text() + "Alpha golf9\n"
    (tmp_path / "more.txt").write_text(text)
    dm = TextCorpusDataModule(corpus=str(tmp_path / "more.txt"), val_fraction=0.0, test_fraction=0.0, **kwargs)
    dm.setup("fit")
    assert len(dm.vocab) == words
    if "max_sentence_length" in kwargs:
        # Lines cut into pieces of 4 words: one more sentence per piece, windows never cross a cut.
        assert dm.splits["train"][1].max().item() + 1 == 3 * 100 + 1


def test_subsampling_rate_reaches_the_pairs(numbered_corpus):
    for sample in (0.0, 1e-3):
        dm = TextCorpusDataModule(corpus=str(numbered_corpus), min_count=1, sample=sample, test_fraction=0.1)
        dm.setup("fit")
        assert torch.equal(dm.keep, keep_probabilities(dm.vocab.counts, sample))
    assert dm.keep[:10].max() < 0.2  # the ten frequent words are dropped often at 1e-3


def test_window_batch_sizes_and_seeded_evaluation_reach_the_loaders(numbered_corpus):
    position = {w: i for i, w in enumerate(ALPHABET)}

    def distances(dm, window):
        words = dm.vocab.words
        batches = list(dm.train_dataloader())
        centres = torch.cat([b[0] for b in batches]).tolist()
        contexts = torch.cat([b[1] for b in batches]).tolist()
        return {
            abs(position[words[c]] - position[words[x]])
            for c, x in zip(centres, contexts, strict=True)
            if words[c] in position and words[x] in position
        }

    for window in (1, 3):
        dm = TextCorpusDataModule(
            corpus=str(numbered_corpus), min_count=2, sample=0.0, window=window, batch_size=64,
            eval_batch_size=50, val_fraction=0.1, test_fraction=0.1,
        )  # fmt: skip
        dm.setup("fit")
        assert distances(dm, window) == set(range(1, window + 1))
    train = [len(b[0]) for b in dm.train_dataloader()]
    assert set(train[:-1]) == {64} and train[-1] <= 64
    val = list(dm.val_dataloader())
    assert {len(b[0]) for b in val[:-1]} == {50}
    again = list(dm.val_dataloader())
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(val, again, strict=True))
    other_epoch = list(dm.train_dataloader())
    assert not torch.equal(torch.cat([b[0] for b in other_epoch]), torch.cat([b[0] for b in dm.train_dataloader()]))


def test_progress_runs_over_the_chunks_to_one(numbered_corpus):
    dm = TextCorpusDataModule(
        corpus=str(numbered_corpus), min_count=2, sample=0.0, window=2, batch_size=32, chunk_words=100,
        test_fraction=0.1, val_fraction=0.0,
    )  # fmt: skip
    dm.setup("fit")
    progress = [b[2].item() for b in dm.train_dataloader()]
    n = dm.num_train_words  # 900 words in chunks of 100: nine chunks, each ending on its own share
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)
    ends = {round(p * n) for p in progress}
    assert {100 * k for k in range(1, 10)} <= ends
    whole = TextCorpusDataModule(corpus=str(numbered_corpus), min_count=2, sample=0.0, window=2, batch_size=10**6)
    whole.setup("fit")
    assert [b[2].item() for b in whole.train_dataloader()] == [pytest.approx(1.0)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"val_fraction": 1.0}, "data.val_fraction must be in"),
        ({"test_fraction": -0.1}, "data.test_fraction must be in"),
        ({"window": 0}, "data.window must be a positive integer, got 0"),
        ({"batch_size": 0}, "data.batch_size must be a positive integer, got 0"),
        ({"min_count": 0}, "data.min_count must be a positive integer, got 0"),
    ],
)
def test_bad_corpus_settings_are_refused_with_their_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TextCorpusDataModule(corpus="x.txt", **kwargs)


def test_dataloader_workers_share_the_chunks_between_them(monkeypatch):
    from types import SimpleNamespace

    ids = torch.arange(900)
    dataset = SkipGramPairs(ids, torch.zeros_like(ids), torch.ones(900), window=1, batch_size=10**6, chunk_words=100)
    seen = []
    for worker in range(2):
        monkeypatch.setattr("litlab.data.text.get_worker_info", lambda w=worker: SimpleNamespace(id=w, num_workers=2))
        seen.append({c // 100 for batch in dataset for c in batch[0].tolist()})
    assert seen == [{0, 2, 4, 6, 8}, {1, 3, 5, 7}]  # every chunk once, alternating


def test_corpus_loader_settings(numbered_corpus):
    dm = TextCorpusDataModule(corpus=str(numbered_corpus), min_count=2, num_workers=2, pin_memory=True)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert (loader.num_workers, loader.pin_memory, loader.persistent_workers) == (2, True, True)
    dm = TextCorpusDataModule(corpus=str(numbered_corpus), min_count=2)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert (loader.num_workers, loader.pin_memory, loader.persistent_workers) == (0, False, False)


def test_an_empty_held_out_split_says_what_to_change(numbered_corpus):
    dm = TextCorpusDataModule(corpus=str(numbered_corpus), min_count=1, val_fraction=0.0, test_fraction=0.0)
    assert dm.num_train_words == 100 * 11  # asking for the size reads the corpus
    with pytest.raises(ValueError, match=r"The test split holds no in-vocabulary words: raise data.test_fraction"):
        dm.test_dataloader()
    with pytest.raises(ValueError, match=r"limit_val_batches=0"):
        dm.val_dataloader()


def test_text8_is_read_from_data_dir_and_downloaded_only_when_missing(tmp_path, monkeypatch):
    fetched = []
    monkeypatch.setattr("litlab.data.text.download_text8", lambda root: fetched.append(root))
    TextCorpusDataModule(corpus="text8", data_dir=str(tmp_path), download=False).prepare_data()
    TextCorpusDataModule(corpus="text8", data_dir=str(tmp_path), download=True).prepare_data()
    assert fetched == [tmp_path]
    (tmp_path / "text8").write_text(" ".join(ALPHABET * 5))
    dm = TextCorpusDataModule(corpus="text8", data_dir=str(tmp_path), download=True, test_fraction=0.0)
    dm.prepare_data()
    assert fetched == [tmp_path]
    dm.setup("fit")
    assert sorted(dm.vocab.words) == sorted(ALPHABET)
