"""The demo of the embedded default: its catalog file and the sample exports of its departments' systems (made by
``python -m catalog.demo.generate``)."""

from pathlib import Path

CATALOG = Path(__file__).parent / "catalog.yaml"
SAMPLES = Path(__file__).parent / "samples"
