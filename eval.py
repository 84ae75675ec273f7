"""Entry point: `python eval.py ckpt_path=PATH [key=value ...]` (see configs/eval.yaml and the README)."""

from litlab.eval import main

if __name__ == "__main__":
    main()
