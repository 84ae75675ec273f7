"""predict.py from a checkpoint alone: image files of every mode, folders, tensor files, word2vec, the GANs."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from litlab.checkpoints.load import CheckpointFile
from litlab.data import DigitsDataModule
from litlab.data.inputs import InputError, read_image, read_tensor_file
from litlab.predict import predict
from tests.helpers.checkpoints import run_entry_point
from tests.helpers.config import predict_config


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def pattern(height: int = 20, width: int = 30) -> np.ndarray:
    """An RGB picture with no symmetry (a rotation or a channel swap shows), smooth enough for JPEG."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 / width, y * 255 / height, (x + 2 * y) * 255 / (width + 2 * height)], axis=-1)
    image[2:8, 3:10] = (255, 40, 0)
    return image.round().astype(np.uint8)


def test_read_image_converts_every_mode(tmp_path):
    base = pattern()
    Image.fromarray(base).save(tmp_path / "rgb.png")
    plain = read_image(tmp_path / "rgb.png", 3, (10, 15)).int()
    assert plain.shape == (3, 10, 15)

    # grey: the same as Pillow's own RGB -> L conversion
    Image.fromarray(base).convert("L").save(tmp_path / "grey.png")
    assert torch.equal(read_image(tmp_path / "rgb.png", 1, (10, 15)), read_image(tmp_path / "grey.png", 1, (10, 15)))

    # 16-bit grey: scaled to 8 bits, not clipped to white
    grey16 = np.asarray(Image.fromarray(base).convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    assert torch.equal(read_image(tmp_path / "grey16.png", 1, (10, 15)), read_image(tmp_path / "grey.png", 1, (10, 15)))

    # RGBA: transparent pixels show the background colour, never the colours hidden under them
    hidden = base.copy()
    hidden[:, :15] = np.random.default_rng(0).integers(0, 256, (20, 15, 3))
    alpha = np.full((20, 30, 1), 255, dtype=np.uint8)
    alpha[:, :15] = 0
    Image.fromarray(np.concatenate([hidden, alpha], axis=-1), mode="RGBA").save(tmp_path / "rgba.png")
    on_black = base.copy()
    on_black[:, :15] = 0
    Image.fromarray(on_black).save(tmp_path / "on_black.png")
    assert torch.equal(
        read_image(tmp_path / "rgba.png", 3, (10, 15), background=(0, 0, 0)),
        read_image(tmp_path / "on_black.png", 3, (10, 15)),
    )

    # palette with a transparent entry: those pixels become the (white) background
    palette = Image.fromarray(base).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    transparent = int(np.asarray(palette)[0, 0])
    palette.save(tmp_path / "palette.png", transparency=transparent)
    pixels = read_image(tmp_path / "palette.png", 3, (20, 30))
    mask = torch.from_numpy(np.asarray(palette) == transparent)
    assert mask.any() and (pixels[:, mask] == 255).all()
    assert not (pixels[:, ~mask] == 255).all(dim=0).all()

    # JPEG, and a JPEG stored rotated with an EXIF orientation tag: both read upright
    Image.fromarray(base).save(tmp_path / "photo.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(base).transpose(Image.Transpose.ROTATE_90).save(tmp_path / "exif.jpg", quality=95, exif=exif)
    for name in ("photo.jpg", "exif.jpg"):
        assert (read_image(tmp_path / name, 3, (10, 15)).int() - plain).abs().float().mean() < 4
    assert read_image(tmp_path / "exif.jpg", 3, (10, 15)).shape == (3, 10, 15)


def test_read_tensor_file_shapes_and_ranges(tmp_path):
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    torch.save(images, tmp_path / "batch.pt")
    as_floats = read_tensor_file(tmp_path / "batch.pt", 3, (8, 8))
    assert torch.allclose(as_floats, images.float() / 255)
    np.save(tmp_path / "grey.npy", images[:, 0].numpy())  # (N, H, W) grey images
    assert read_tensor_file(tmp_path / "grey.npy", 1, (8, 8)).shape == (4, 1, 8, 8)
    assert read_tensor_file(tmp_path / "batch.pt", 1, (4, 4)).shape == (4, 1, 4, 4)
    torch.save(images.float() * 10, tmp_path / "normalised.pt")
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        read_tensor_file(tmp_path / "normalised.pt", 3, (8, 8))


def write_digits(folder: Path, count: int = 60) -> list[int]:
    """The last `count` scikit-learn digits as files of different sizes, modes and formats; returns the labels."""
    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    labels = []
    for k in range(count):
        i = len(digits.images) - count + k
        grey = Image.fromarray((digits.images[i] * 255 / 16).round().astype(np.uint8))
        big = grey.resize((32, 32), Image.Resampling.NEAREST)
        kind = k % 4
        if kind == 0:
            grey.save(folder / f"{k:02d}.png")
        elif kind == 1:
            big.convert("RGB").save(folder / f"{k:02d}.jpg", quality=95)
        elif kind == 2:
            Image.merge("RGBA", [big] * 3 + [Image.new("L", big.size, 255)]).save(folder / f"{k:02d}.png")
        else:
            sub = folder / "sub"
            sub.mkdir(exist_ok=True)
            Image.fromarray(np.asarray(big, dtype=np.uint16) * 257).save(sub / f"{k:02d}.png")
        labels.append(int(digits.target[i]))
    return labels


def test_classifier_predicts_a_folder_of_mixed_images(tmp_path, classifier_ckpt):
    labels = write_digits(tmp_path / "inputs")
    (tmp_path / "inputs" / "broken.png").write_bytes(b"not an image")
    (tmp_path / "inputs" / "notes.txt").write_text("not an image either, and not named like one")
    result, _ = predict(predict_config([f"ckpt_path={classifier_ckpt}", f"inputs={tmp_path / 'inputs'}"], tmp_path))

    rows = read_csv(tmp_path / "predictions.csv")
    assert list(rows[0]) == ["input", "class", "probability", "top_3"]
    assert len(rows) == result["written"] == 60  # the broken file skipped, the text file left out, the rest all there
    assert result["skipped"] == ["'broken.png' could not be read as an image (UnidentifiedImageError); it is skipped"]
    assert result["not_images"] == ["notes.txt"]
    by_number = {int(Path(row["input"]).stem): row for row in rows}
    assert "sub/03.png" in {row["input"] for row in rows}  # names relative to the folder
    correct = sum(by_number[k]["class"] == str(label) for k, label in enumerate(labels))
    assert correct / len(labels) > 0.8  # ten classes: chance is 0.1
    first = rows[0]
    assert first["top_3"].startswith(f"{first['class']} (") and first["top_3"].count(";") == 2


def test_tensor_file_predictions_match_the_training_pipeline(tmp_path, classifier_ckpt):
    data = DigitsDataModule()
    data.setup()
    images, labels = data.data_test.images, data.data_test.labels
    torch.save(images, tmp_path / "test_split.pt")
    predict(predict_config([f"ckpt_path={classifier_ckpt}", f"inputs={tmp_path / 'test_split.pt'}"], tmp_path))
    rows = read_csv(tmp_path / "predictions.csv")
    assert [row["input"] for row in rows[:2]] == [
        f"{tmp_path / 'test_split.pt'}[0]",
        f"{tmp_path / 'test_split.pt'}[1]",
    ]

    model = CheckpointFile.open(classifier_ckpt).module().eval()
    with torch.no_grad():
        probabilities = model(data.normalize(images)).softmax(1)
    top, classes = probabilities.max(1)
    assert [row["class"] for row in rows] == [str(c) for c in classes.tolist()]
    assert np.allclose([float(row["probability"]) for row in rows], top.numpy(), atol=1e-5)
    assert (classes == labels).float().mean() > 0.85


def test_bad_inputs_get_one_sentence(tmp_path, classifier_ckpt):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no image files: put images in it"):
        predict(predict_config([f"ckpt_path={classifier_ckpt}", f"inputs={tmp_path / 'empty'}"], tmp_path))
    with pytest.raises(InputError, match="does not exist"):
        predict(predict_config([f"ckpt_path={classifier_ckpt}", f"inputs={tmp_path / 'nope.png'}"], tmp_path))
    Image.new("L", (8, 8), 255).save(tmp_path / "white.png")
    (tmp_path / "garbage.pt").write_bytes(b"not a tensor")
    torch.save({"images": torch.zeros(2, 1, 8, 8)}, tmp_path / "dict.pt")
    overrides = [
        f"ckpt_path={classifier_ckpt}",
        f"inputs=[{tmp_path / 'garbage.pt'},{tmp_path / 'dict.pt'},{tmp_path / 'white.png'}]",
    ]
    result, _ = predict(predict_config(overrides, tmp_path))
    assert result["written"] == 1  # the image still ran
    assert result["skipped"] == [
        f"'{tmp_path / 'garbage.pt'}' could not be read as a tensor (UnpicklingError); skipped.",
        f"'{tmp_path / 'dict.pt'}' holds a dict, not a tensor of images; it is skipped.",
    ]
    with pytest.raises(InputError, match="None of the inputs could be read"):
        predict(predict_config([f"ckpt_path={classifier_ckpt}", f"inputs={tmp_path / 'garbage.pt'}"], tmp_path))
    with pytest.raises(InputError, match="No inputs given"):
        predict(predict_config([f"ckpt_path={classifier_ckpt}"], tmp_path))


def test_predict_command_runs_from_a_lone_checkpoint(tmp_path, classifier_ckpt):
    write_digits(tmp_path / "inputs", count=4)
    (tmp_path / "inputs" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    (tmp_path / "inputs" / "notes.txt").write_text("a note")
    (tmp_path / "inputs" / "sub" / "labels.csv").write_text("name,label")
    overrides = [
        f"ckpt_path={classifier_ckpt}",
        f"inputs={tmp_path / 'inputs'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "trainer.accelerator=cpu",
    ]
    # run from another folder than the repository: nothing but the checkpoint and the inputs
    run = run_entry_point("predict.py", overrides, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(read_csv(tmp_path / "run" / "predictions.csv")) == 4
    output = run.stdout + run.stderr
    assert output.count("'broken.jpg' could not be read as an image") == 1
    assert "predictions" in output and "01.jpg" in output  # the printed table
    named = [line for line in output.splitlines() if "not images" in line]
    assert len(named) == 1 and named[0].endswith("Skipped 2 file(s) that are not images: notes.txt, sub/labels.csv.")
    # the config tree goes to the run's files, not to the terminal
    assert "CONFIG" not in output and "ckpt_path" not in output
    log = (tmp_path / "run" / "predict.log").read_text()
    assert "The composed config:" in log and "ckpt_path" in log and str(classifier_ckpt) in log
    assert str(classifier_ckpt) in (tmp_path / "run" / "config_tree.log").read_text()


def test_word2vec_nearest_words_and_analogies(tmp_path, word2vec_ckpt):
    overrides = [
        f"ckpt_path={word2vec_ckpt}",
        "query=[TopicAWordB,unheardof]",
        "k=5",
        "analogy=[topicaworda:topicawordb::topicbworda,topicaworda:topicawordb]",
    ]
    result, _ = predict(predict_config(overrides, tmp_path))
    neighbours = read_csv(tmp_path / "neighbours.csv")
    assert [row["query"] for row in neighbours] == ["TopicAWordB"] * 5  # the unknown word skipped, the other ran
    # words of one topic share contexts: the nearest words of a topic-a word are topic-a words
    assert sum(row["word"].startswith("topica") for row in neighbours) >= 4
    assert [row["rank"] for row in neighbours] == ["1", "2", "3", "4", "5"]
    analogies = read_csv(tmp_path / "analogies.csv")
    assert len(analogies) == 5 and {row["analogy"] for row in analogies} == {"topicaworda:topicawordb::topicbworda"}
    assert not {row["word"] for row in analogies} & {"topicaworda", "topicawordb", "topicbworda"}
    assert result["skipped"] == [
        "'unheardof' is not in the vocabulary of 44 words (rarer than the run's data.min_count, or absent from its "
        "corpus); it is skipped.",
        "Analogy 'topicaworda:topicawordb' is not of the form a:b::c (a is to b as c is to ?); it is skipped.",
    ]


def test_cgan_generates_per_class_reproducibly(tmp_path, cgan_ckpt):
    def run(seed: int, folder: str) -> dict:
        overrides = [f"ckpt_path={cgan_ckpt}", "n_per_class=3", f"seed={seed}", "batch_size=7"]
        return predict(predict_config(overrides, tmp_path / folder))[0]

    first = run(1, "a")
    folders = sorted(p.name for p in (tmp_path / "a" / "samples").iterdir())
    assert folders == [
        "0_zero",
        "1_one",
        "2_two",
        "3_three",
        "4_four",
        "5_five",
        "6_six",
        "7_seven",
        "8_eight",
        "9_nine",
    ]
    assert sorted(p.name for p in (tmp_path / "a" / "samples" / "7_seven").iterdir()) == [
        "000.png",
        "001.png",
        "002.png",
    ]
    sample = Image.open(first["paths"][0])
    assert (sample.mode, sample.size) == ("L", (28, 28))
    grid = Image.open(first["grid"])
    assert grid.size == (3 * 30 + 2, 10 * 30 + 2)  # three columns, one row per class
    same, other = run(1, "b"), run(2, "c")
    read = [[np.asarray(Image.open(p)) for p in r["paths"]] for r in (first, same, other)]
    assert all(np.array_equal(x, y) for x, y in zip(read[0], read[1], strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(read[0], read[2], strict=True))


def test_cyclegan_translates_a_folder_both_ways(tmp_path, cyclegan_ckpt):
    folder = tmp_path / "inputs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k, (size, mode) in enumerate([((28, 28), "L"), ((40, 50), "RGB"), ((17, 17), "L")]):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).convert(mode).save(folder / f"in{k}.png")
    model = CheckpointFile.open(cyclegan_ckpt).module().eval()
    outputs = {}
    for direction, generator in (("AtoB", model.g_ab), ("BtoA", model.g_ba)):
        overrides = [f"ckpt_path={cyclegan_ckpt}", f"inputs={folder}", f"direction={direction}"]
        result, _ = predict(predict_config(overrides, tmp_path / direction))
        assert sorted(p.name for p in result["paths"]) == ["in0.png", "in1.png", "in2.png"]
        got = torch.from_numpy(np.array(Image.open(tmp_path / direction / "translated" / "in1.png")))
        with torch.no_grad():
            expected = generator(read_image(folder / "in1.png", 1, (28, 28)).float()[None] / 127.5 - 1)
        expected = ((expected[0, 0].clamp(-1, 1) + 1) * 127.5).round()
        assert (got.float() - expected).abs().max() <= 1  # the training pixel convention, both ways
        outputs[direction] = got
    assert not torch.equal(outputs["AtoB"], outputs["BtoA"])


def test_no_readable_input_is_an_error_like_an_empty_folder(tmp_path, classifier_ckpt):
    def predict_from(inputs: str) -> None:
        predict(predict_config([f"ckpt_path={classifier_ckpt}", f"inputs={inputs}"], tmp_path / "run"))

    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"^None of the inputs could be read \(see above\): pass image files"):
        predict_from(str(tmp_path / "empty.png"))
    # a header Pillow opens, pixels it cannot decode: known only once the run reads them
    Image.fromarray(pattern()).save(tmp_path / "whole.png")
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:80])
    (tmp_path / "cut" / "empty.jpg").write_bytes(b"")
    with pytest.raises(InputError, match=r"^None of the inputs could be read"):
        predict_from(str(tmp_path / "cut"))


def transparent_digits(folder: Path, count: int = 60) -> list[int]:
    """Light digits on a transparent background, as RGBA, LA and palette images; the hidden colour is white."""
    digits = load_digits()
    folder.mkdir()
    labels = []
    for k in range(count):
        i = len(digits.images) - count + k
        ink = Image.fromarray((digits.images[i] * 255 / 16).round().astype(np.uint8)).resize((32, 32))
        white = Image.new("L", ink.size, 255)
        if k % 3 == 0:
            Image.merge("RGBA", [white, white, white, ink]).save(folder / f"{k:02d}.png")
        elif k % 3 == 1:
            Image.merge("LA", [white, ink]).save(folder / f"{k:02d}.png")
        else:
            # palette: index 0 a transparent white, the others the ink's grey levels
            levels = (np.asarray(ink, dtype=np.float64) / 255 * 15).round().astype(np.uint8)
            palette = Image.fromarray(levels, mode="P")
            palette.putpalette([255, 255, 255] + [v for g in range(1, 16) for v in (g * 17,) * 3])
            palette.save(folder / f"{k:02d}.png", transparency=0)
        labels.append(int(digits.target[i]))
    return labels


def test_transparent_images_are_composited_on_the_training_datas_background(tmp_path, classifier_ckpt):
    labels = transparent_digits(tmp_path / "inputs")
    modes = {Image.open(path).mode for path in (tmp_path / "inputs").iterdir()}
    assert modes == {"RGBA", "LA", "P"}

    def accuracy(ckpt: Path, *overrides: str) -> float:
        out = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
        predict(predict_config([f"ckpt_path={ckpt}", f"inputs={tmp_path / 'inputs'}", *overrides], out))
        classes = {int(Path(row["input"]).stem): int(row["class"]) for row in read_csv(out / "predictions.csv")}
        return sum(classes[k] == label for k, label in enumerate(labels)) / len(labels)

    # the digits are light on black: the checkpoint records a black background, and the digits read as digits
    assert CheckpointFile.open(classifier_ckpt).pixels.background == (0,)
    assert accuracy(classifier_ckpt) > 0.8
    # on white, the transparent pixels hide the digits (chance is 0.1)
    assert accuracy(classifier_ckpt, "background=[255,255,255]") < 0.3
    # a checkpoint written before the background was recorded keeps today's white
    old = torch.load(classifier_ckpt, weights_only=True)
    del old["litlab"]["pixels"]["background"]
    torch.save(old, tmp_path / "old.ckpt")
    assert CheckpointFile.open(tmp_path / "old.ckpt").pixels.background is None
    assert accuracy(tmp_path / "old.ckpt") < 0.3
