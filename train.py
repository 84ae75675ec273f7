"""Entry point: `python train.py experiment=NAME [key=value ...]` (see configs/ and the README)."""

from litlab.train import main

if __name__ == "__main__":
    main()
