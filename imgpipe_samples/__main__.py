"""`python -m imgpipe_samples DIR`: write the demo's sample images, print a JSON manifest."""

import argparse
import json
from pathlib import Path

from imgpipe_samples import manifest

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m imgpipe_samples", description=__doc__)
    parser.add_argument("dir", type=Path, help="where to write the images (created if missing)")
    print(json.dumps(manifest(parser.parse_args().dir)))
