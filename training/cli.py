"""``python -m unpaired_edit.training METHOD --config FILE.yaml [--resume]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .config import ConfigError, load_config
from .loop import train
from .methods import METHODS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unpaired_edit.training", description="Train edit models.")
    parser.add_argument("method", choices=sorted(METHODS), help="The training method.")
    parser.add_argument("--config", required=True, help="A YAML file (see training/configs/).")
    parser.add_argument("--resume", action="store_true", help="Continue from the newest checkpoint in output_dir.")
    args = parser.parse_args(argv)
    method_cls = METHODS[args.method]
    try:
        config, options = load_config(args.config, args.method, method_cls.Options)
    except ConfigError as err:
        print(f"Config error: {err}", file=sys.stderr)
        return 2
    path = train(method_cls(config, options), resume=args.resume)
    print(path)
    return 0
