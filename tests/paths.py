"""Where the tests' own input files live."""

from pathlib import Path

HERE = Path(__file__).parent
BAD = HERE / "bad"
MODELS = HERE / "models"
SHORT_HORIZON = 2035.0  # the levers start in 2027; by 2035 their effects are clear
