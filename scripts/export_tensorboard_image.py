"""Saves an image logged to TensorBoard (e.g. a GAN's sample grid) as a PNG file.

    python scripts/export_tensorboard_image.py logs/.../tensorboard/version_0 samples/fixed_noise docs/grid.png

The last logged step is taken unless --step is given.
"""

import argparse
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def export(log_dir: str, tag: str, out: str, step: int | None = None) -> int:
    """Writes the image `tag` at `step` (default: the last) from the event files in `log_dir`; returns the step."""
    events = EventAccumulator(log_dir, size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()["images"]
    if tag not in tags:
        raise SystemExit(f"No image '{tag}' in {log_dir}: it holds {', '.join(tags) or 'no images'}.")
    images = events.Images(tag)
    chosen = images[-1] if step is None else next((i for i in images if i.step == step), None)
    if chosen is None:
        raise SystemExit(f"No step {step} for '{tag}': logged steps are {[i.step for i in images]}.")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(chosen.encoded_image_string)  # TensorBoard stores the PNG itself
    return chosen.step


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log_dir")
    parser.add_argument("tag")
    parser.add_argument("out")
    parser.add_argument("--step", type=int, default=None)
    args = parser.parse_args()
    print(f"step {export(args.log_dir, args.tag, args.out, args.step)} -> {args.out}")
