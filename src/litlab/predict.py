"""The recipe of a prediction from a checkpoint alone: `python predict.py ckpt_path=PATH ...` (configs/predict.yaml).

What the checkpoint holds decides what is asked of it:
- an image classifier: `inputs=` (an image, a folder of images, a saved tensor) -> predictions.csv;
- word2vec: `query=WORD k=10` (nearest words) and `analogy=a:b::c` -> neighbours.csv, analogies.csv;
- the conditional GAN: `n_per_class=N` -> samples/<class>/NNN.png and samples_grid.png (one row per class);
- CycleGAN: `inputs=` (images) and `direction=AtoB|BtoA` -> translated/<input name>.png.
"""

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning import Callback, LightningModule, Trainer
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table
from torchvision.io import decode_image, write_png

from litlab import speed
from litlab.callbacks.prediction_writers import ClassPredictionWriter, ImageFileWriter
from litlab.checkpoints.load import CheckpointError, CheckpointFile
from litlab.data.inputs import (
    WHITE,
    ClassLabels,
    ImageInputs,
    InputError,
    PredictionDataModule,
    find_inputs,
    input_names,
)
from litlab.figures import image_grid
from litlab.models import ConditionalGAN, CycleGAN, ImageClassifier, Word2Vec
from litlab.run_record import RunRecorder, warn_if_code_changed
from litlab.utils.errors import report_errors
from litlab.utils.instantiators import instantiate_trainer
from litlab.utils.preflight import as_list, before_prediction, checkpoint_path
from litlab.utils.pylogger import RankedLogger
from litlab.utils.utils import extras, task_context

log = RankedLogger(__name__)

ANALOGY = re.compile(r"^\s*([^:\s]+)\s*:\s*([^:\s]+)\s*::\s*([^:\s]+)\s*$")


def _print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], more: int = 0) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    console = Console(soft_wrap=True)
    console.print(table)
    if more > 0:
        console.print(f"... and {more} more")


def _trainer(cfg: DictConfig, writer: Callback) -> Trainer:
    # No logger: predicting records nothing to compare runs by; its output is the writer's files.
    return instantiate_trainer(cfg, [writer])


def background(cfg: DictConfig, checkpoint: CheckpointFile) -> tuple[int, ...]:
    """The colour transparent inputs are composited on: `background=` if given, else the training data's (as the
    checkpoint records it with the pixel convention), else white."""
    if cfg.get("background") is not None:
        return tuple(int(v) for v in cfg.background)
    pixels = checkpoint.pixels
    return pixels.background if pixels is not None and pixels.background is not None else WHITE


def _image_inputs(
    cfg: DictConfig, checkpoint: CheckpointFile, channels: int, size: Sequence[int]
) -> tuple[ImageInputs, list[str]]:
    """The readable inputs, and the names of the files of the input folders that are not images."""
    found = find_inputs(as_list(cfg.get("inputs")))
    paths = as_list(cfg.inputs)
    not_images = input_names(found.not_images, paths)
    if not_images:
        log.warning(f"Skipped {len(not_images)} file(s) that are not images: {', '.join(not_images)}.")
    dataset = ImageInputs(found.files, input_names(found.files, paths), channels, size, background(cfg, checkpoint))
    for _, sentence in dataset.failed:
        log.warning(sentence)
    if len(dataset) == 0:
        raise _nothing_readable()
    return dataset, not_images


def _nothing_readable() -> InputError:
    return InputError("None of the inputs could be read (see above): pass image files or a .pt/.npy tensor.")


def _image_shape(checkpoint: CheckpointFile, data: dict[str, Any], net_shape: Sequence[int] | None) -> tuple[int, list]:
    if "channels" in data and "image_size" in data:
        return int(data["channels"]), list(data["image_size"])
    if net_shape is not None:
        return int(net_shape[0]), list(net_shape[1:])
    raise checkpoint.error("records no input size: retrain it with this version of litlab")


def predict_classes(cfg: DictConfig, checkpoint: CheckpointFile, model: ImageClassifier, out: Path) -> dict[str, Any]:
    """Class predictions for image files, folders and tensor files, written to predictions.csv batch by batch."""
    data = checkpoint.data
    if "mean" not in data:
        raise checkpoint.error("records no pixel statistics of its training data")
    channels, size = _image_shape(checkpoint, data, getattr(model.net, "input_shape", None))
    class_names = data.get("class_names") or model.hparams.get("class_names")
    class_names = list(class_names or [str(i) for i in range(model.num_classes)])
    dataset, not_images = _image_inputs(cfg, checkpoint, channels, size)
    writer = ClassPredictionWriter(out / "predictions.csv", dataset.names, class_names, cfg.top_k, cfg.show)
    datamodule = PredictionDataModule(
        dataset, cfg.batch_size, cfg.num_workers, data["mean"], data["std"], (channels, *size)
    )
    _trainer(cfg, writer).predict(model, datamodule=datamodule, return_predictions=False)
    if writer.written == 0:
        raise _nothing_readable()
    _print_table(
        f"{checkpoint.module_name}: {writer.written} predictions",
        ["input", "class", "probability", f"top {writer.top_k}"],
        writer.rows,
        writer.written - len(writer.rows),
    )
    skipped = [sentence for _, sentence in dataset.failed] + writer.skipped
    if skipped:
        log.warning(f"{len(skipped)} input(s) skipped (see above).")
    log.info(f"Predictions: {writer.path.resolve()}")
    return {
        "path": writer.path,
        "written": writer.written,
        "skipped": skipped,
        "not_images": not_images,
        "rows": writer.rows,
    }


def translate_images(cfg: DictConfig, checkpoint: CheckpointFile, model: CycleGAN, out: Path) -> dict[str, Any]:
    """Every input image translated by the generator of `direction`, written to translated/."""
    if cfg.direction not in ("AtoB", "BtoA"):
        raise ValueError(f"direction must be AtoB or BtoA, got {cfg.direction!r}.")
    model.predict_direction = cfg.direction
    generator = model.g_ab if cfg.direction == "AtoB" else model.g_ba
    data = checkpoint.data
    size = data.get("image_size")
    if size is None:
        raise checkpoint.error("records no image size: retrain it with this version of litlab")
    channels = generator.in_channels
    dataset, not_images = _image_inputs(cfg, checkpoint, channels, size)
    writer = ImageFileWriter(out / "translated", dataset.names)
    datamodule = PredictionDataModule(dataset, cfg.batch_size, cfg.num_workers, data["mean"], data["std"])
    _trainer(cfg, writer).predict(model, datamodule=datamodule, return_predictions=False)
    if writer.written == 0:
        raise _nothing_readable()
    skipped = [sentence for _, sentence in dataset.failed] + writer.skipped
    log.info(f"{writer.written} images translated {cfg.direction}: {writer.folder.resolve()}")
    return {"paths": writer.paths, "written": writer.written, "skipped": skipped, "not_images": not_images}


def _folder_name(name: str) -> str:
    # "0 - zero" -> "0_zero": class names become folder names that need no quoting
    return re.sub(r"[^\w.]+", "_", name).strip("_") or "class"


def generate_per_class(cfg: DictConfig, checkpoint: CheckpointFile, model: ConditionalGAN, out: Path) -> dict[str, Any]:
    """`n_per_class` images of every class: samples/<class>/NNN.png, and samples_grid.png with one row per class."""
    n = int(cfg.n_per_class)
    if n < 1:
        raise ValueError(f"n_per_class must be a positive integer, got {n}.")
    class_names = checkpoint.data.get("class_names") or [str(i) for i in range(model.num_classes)]
    labels = [c for c in range(model.num_classes) for _ in range(n)]
    names = [f"{_folder_name(class_names[c])}/{k:03d}" for c in range(model.num_classes) for k in range(n)]
    writer = ImageFileWriter(out / "samples", names)
    datamodule = PredictionDataModule(ClassLabels(labels), cfg.batch_size, cfg.num_workers)
    _trainer(cfg, writer).predict(model, datamodule=datamodule, return_predictions=False)
    images = torch.stack([decode_image(str(path)) for path in writer.paths]).float() / 127.5 - 1.0
    grid = out / "samples_grid.png"
    write_png((image_grid(images, nrow=n) * 255).round().to(torch.uint8), str(grid))
    log.info(f"{writer.written} images ({n} per class): {writer.folder.resolve()}; grid: {grid.resolve()}")
    return {"paths": writer.paths, "grid": grid, "written": writer.written}


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def query_words(cfg: DictConfig, checkpoint: CheckpointFile, model: Word2Vec, out: Path) -> dict[str, Any]:
    """Nearest words of each `query` and the answers of each `analogy`, to neighbours.csv and analogies.csv."""
    queries, analogies = as_list(cfg.get("query")), as_list(cfg.get("analogy"))
    if not queries and not analogies:
        raise InputError("Nothing to ask a word2vec model: pass query=WORD (and k=10) or analogy=a:b::c.")
    vectors = model.word_vectors()
    lowercase = checkpoint.data.get("lowercase", True)
    skipped: list[str] = []

    def known(word: str) -> str | None:
        token = word.lower() if lowercase else word
        if token in vectors:
            return token
        skipped.append(
            f"'{word}' is not in the vocabulary of {len(vectors)} words (rarer than the run's data.min_count, "
            "or absent from its corpus); it is skipped."
        )
        log.warning(skipped[-1])
        return None

    result: dict[str, Any] = {"skipped": skipped}
    if queries:
        rows = [
            (query, rank, word, round(similarity, 6))
            for query in queries
            if (token := known(query)) is not None
            for rank, (word, similarity) in enumerate(vectors.most_similar(token, cfg.k), start=1)
        ]
        result["neighbours"] = out / "neighbours.csv"
        _write_csv(result["neighbours"], ["query", "rank", "word", "similarity"], rows)
        _print_table(f"word2vec: the {cfg.k} nearest words", ["query", "rank", "word", "similarity"], rows)
    if analogies:
        rows = []
        for analogy in analogies:
            match = ANALOGY.match(analogy)
            if not match:
                skipped.append(
                    f"Analogy '{analogy}' is not of the form a:b::c (a is to b as c is to ?); it is skipped."
                )
                log.warning(skipped[-1])
                continue
            tokens = [known(word) for word in match.groups()]
            if None in tokens:
                continue
            answers = vectors.analogy(*tokens, k=cfg.k)
            rows += [(analogy, rank, word, round(score, 6)) for rank, (word, score) in enumerate(answers, start=1)]
        result["analogies"] = out / "analogies.csv"
        _write_csv(result["analogies"], ["analogy", "rank", "word", "similarity"], rows)
        _print_table("word2vec: a is to b as c is to ?", ["analogy", "rank", "word", "similarity"], rows)
    return result


def predict(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Rebuilds the model from `ckpt_path` alone and asks of it what its kind answers (see the module's doc)."""
    with task_context(cfg):
        ckpt_path = checkpoint_path(cfg, "predict.py")
        speed.apply(cfg.get("speedups", True))
        if cfg.get("seed") is not None:
            L.seed_everything(cfg.seed, verbose=False)
        checkpoint = CheckpointFile.open(ckpt_path)
        warn_if_code_changed(checkpoint.record.get("run"))
        log.info(f"Rebuilding <{checkpoint.module_name}> from {cfg.ckpt_path}")
        model: LightningModule = checkpoint.module()
        out = Path(cfg.paths.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        RunRecorder(cfg)  # the record of the predictions: the code, the command, the checkpoint's hash
        if isinstance(model, ImageClassifier):
            result = predict_classes(cfg, checkpoint, model, out)
        elif isinstance(model, Word2Vec):
            result = query_words(cfg, checkpoint, model, out)
        elif isinstance(model, ConditionalGAN):
            result = generate_per_class(cfg, checkpoint, model, out)
        elif isinstance(model, CycleGAN):
            result = translate_images(cfg, checkpoint, model, out)
        else:
            raise CheckpointError(f"predict.py does not know what to ask of a {checkpoint.module_name} checkpoint.")
        return result, {"cfg": cfg, "model": model, "checkpoint": checkpoint}


def run(cfg: DictConfig) -> None:
    """What `python predict.py` runs: the checks of its inputs, extras, then `predict`; an error ends it with one
    sentence on the terminal."""
    with report_errors():
        before_prediction(cfg)
        extras(cfg)
        predict(cfg)
