"""Words per second of word2vec training, litlab's against gensim's, with the same settings in one run.

    python scripts/benchmark_word2vec.py CORPUS [--analogies questions-words.txt] [--similarity wordsim353.tsv]
        [--repeats 2] [--results-page word2vec-gensim]

Both train skip-gram with negative sampling on the same sentences (litlab's tokeniser), with the same
dimension, window, negatives, min_count, sample, epochs and learning-rate decay. Words per second counts
in-vocabulary corpus words (before subsampling) times epochs over the training time, for both alike;
vocabulary building is left out of both. gensim (an optional extra: `pip install -e '.[bench]'`) is
skipped when it is not installed. On a shared CPU run the two back to back, as here, to compare fairly;
`--repeats N` runs the pair N times. The table also goes to docs/results/word2vec-gensim.md
(`--results-page`), stamped with the command, commit and machine.
"""

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from litlab.data.text import TextCorpusDataModule, read_sentences
from litlab.models.embeddings import WordVectors
from litlab.models.word2vec import Word2Vec
from litlab.reports.results_page import markdown_table, write_results_page

ROOT = Path(__file__).resolve().parents[1]


def evaluate(vectors: WordVectors, args: argparse.Namespace) -> dict[str, str]:
    """The analogy accuracy and the WordSim Spearman correlation, for the files given ("-" otherwise)."""
    scores = {"analogy": "-", "wordsim spearman": "-"}
    if args.analogies:
        result = vectors.analogy_accuracy(args.analogies, restrict=args.restrict)
        scores["analogy"] = f"{result.accuracy:.4f} ({result.correct}/{result.total})"
    if args.similarity:
        result = vectors.similarity_spearman(args.similarity)
        scores["wordsim spearman"] = f"{result.spearman:.4f} ({result.pairs} pairs)"
    return scores


def shown(scores: dict[str, str]) -> str:
    """The scores that were computed, as `; name value, ...` ("" when none was)."""
    text = ", ".join(f"{name} {value}" for name, value in scores.items() if value != "-")
    return f"; {text}" if text else ""


def run_litlab(args: argparse.Namespace) -> tuple[float, WordVectors]:
    datamodule = TextCorpusDataModule(
        corpus=args.corpus,
        min_count=args.min_count,
        sample=args.sample,
        window=args.window,
        batch_size=args.batch_size,
        val_fraction=0.0,
        test_fraction=0.0,
        num_workers=args.workers,
    )
    datamodule.setup("fit")
    model = Word2Vec(
        embedding_dim=args.dim,
        negatives=args.negatives,
        negatives_group=args.negatives_group,
        optimizer={"_target_": "torch.optim.SGD", "lr": args.lr},
        min_lr_ratio=args.min_lr_ratio,
        vectors_file=None,
    )
    trainer = L.Trainer(
        accelerator=args.accelerator,
        devices=1,
        max_epochs=args.epochs,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    seconds = time.perf_counter() - start
    return datamodule.num_train_words * args.epochs / seconds, model.word_vectors()


def run_gensim(args: argparse.Namespace, sentences: list[list[str]]) -> tuple[float, WordVectors]:
    from gensim.models import Word2Vec as GensimWord2Vec

    model = GensimWord2Vec(
        vector_size=args.dim,
        window=args.window,
        negative=args.negatives,
        min_count=args.min_count,
        sample=args.sample,
        sg=1,
        hs=0,
        alpha=args.lr,
        min_alpha=args.lr * args.min_lr_ratio,
        workers=args.threads,
        seed=args.seed,
    )
    model.build_vocab(sentences)
    words = sum(model.wv.get_vecattr(w, "count") for w in model.wv.index_to_key)
    start = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=args.epochs)
    seconds = time.perf_counter() - start
    return words * args.epochs / seconds, WordVectors(model.wv.index_to_key, torch.from_numpy(model.wv.vectors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", help="a text file or a folder of them, one sentence per line")
    parser.add_argument("--analogies", help="a questions-words.txt style analogy file")
    parser.add_argument("--similarity", help="a WordSim-353 style tab-separated file")
    parser.add_argument("--restrict", type=int, default=30_000, help="analogy answers among this many words")
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.025)
    parser.add_argument("--min-lr-ratio", type=float, default=1e-4)
    parser.add_argument("--negatives-group", type=int, default=64, help="litlab's pairs sharing noise words")
    parser.add_argument("--batch-size", type=int, default=8192, help="litlab's pairs per step")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for litlab, workers for gensim")
    parser.add_argument("--workers", type=int, default=0, help="litlab's DataLoader workers (pair generation)")
    parser.add_argument("--accelerator", default="cpu", help="litlab's device: cpu, gpu or auto")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-gensim", action="store_true")
    parser.add_argument("--repeats", type=int, default=1, help="runs of the pair, back to back (one row each)")
    parser.add_argument("--results-page", default="word2vec-gensim", help="the page of docs/results/ ('' for none)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    L.seed_everything(args.seed, verbose=False)
    sentences = read_sentences(args.corpus)
    print(f"corpus {args.corpus}: {len(sentences)} sentences, {sum(map(len, sentences))} words; {vars(args)}")

    rows = []
    for repeat in range(1, args.repeats + 1):
        speed, vectors = run_litlab(args)
        scores = evaluate(vectors, args)
        print(f"litlab: {speed:,.0f} words/s; vocabulary {len(vectors)}{shown(scores)}")
        if repeat == 1:
            check_round_trip(vectors, args)
        row = [repeat, f"{speed:,.0f}", "-", "-", scores["analogy"], "-", scores["wordsim spearman"], "-"]
        if not args.skip_gensim:
            try:
                speed_gensim, vectors_gensim = run_gensim(args, sentences)
            except ImportError:
                print("gensim: not installed (pip install -e '.[bench]'), skipped")
            else:
                scores_gensim = evaluate(vectors_gensim, args)
                print(f"gensim: {speed_gensim:,.0f} words/s; vocabulary {len(vectors_gensim)}{shown(scores_gensim)}")
                print(f"litlab / gensim speed: {speed / speed_gensim:.2f}")
                row[2:4] = [f"{speed_gensim:,.0f}", f"{speed / speed_gensim:.2f}"]
                row[5], row[7] = scores_gensim["analogy"], scores_gensim["wordsim spearman"]
        rows.append(row)
    if args.results_page:
        header = ["run", "litlab words/s", "gensim words/s", "ratio", "analogy litlab", "analogy gensim",
                  "WordSim-353 Spearman litlab", "WordSim-353 Spearman gensim"]  # fmt: skip
        body = (
            f"Skip-gram with negative sampling on `{Path(args.corpus).name}` ({len(sentences):,} sentences, "
            f"{sum(map(len, sentences)):,} words), dimension {args.dim}, window {args.window}, {args.negatives} "
            f"negatives, min_count {args.min_count}, sample {args.sample:g}, {args.epochs} epochs, {args.threads} "
            f"thread(s) each; litlab at {args.batch_size:,} pairs per step, `negatives_group={args.negatives_group}`. "
            "Words per second count in-vocabulary words times epochs over the training time, for both alike; "
            "the runs went back to back, litlab then gensim.\n\n" + markdown_table(header, rows)
        )
        path = write_results_page(args.results_page, "word2vec: litlab against gensim", body)
        print(f"results page: {path.relative_to(ROOT)}")


def check_round_trip(vectors: WordVectors, args: argparse.Namespace) -> None:
    """The vectors survive the word2vec text format, and gensim reads the file when it is installed."""
    with tempfile.TemporaryDirectory() as tmp:
        saved = vectors.save_word2vec(Path(tmp) / "vectors.txt")
        reloaded = WordVectors.load_word2vec(saved)
        assert reloaded.words == vectors.words and torch.allclose(reloaded.vectors, vectors.vectors, atol=1e-5)
        gensim_reads = ""
        if not args.skip_gensim:
            try:
                from gensim.models import KeyedVectors

                gensim_reads = f", gensim reads it: {len(KeyedVectors.load_word2vec_format(saved))} words"
            except ImportError:
                pass
        print(f"litlab: word2vec text format round trip ok{gensim_reads}")


if __name__ == "__main__":
    main()
