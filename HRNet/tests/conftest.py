import sys
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parents[1]
REPO = MODEL_DIR.parent
for p in (str(REPO), str(MODEL_DIR)):
    if p not in sys.path:
        sys.path.insert(0, p)
