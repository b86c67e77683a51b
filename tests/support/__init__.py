"""What several test files share: generated images, Pulumi's mocks, AWS fixtures, waits."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
