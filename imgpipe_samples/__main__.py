"""`python -m imgpipe_samples DIR`: write the demo's sample images, print a JSON manifest."""

import json
import sys
from pathlib import Path

from imgpipe_samples import manifest

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m imgpipe_samples DIR")
    print(json.dumps(manifest(Path(sys.argv[1]))))
