"""`sdmodel describe` (sdmodel/describe.py): a variable's equation, units, source and links, the comparison's
measures by their keys, suggestions for typos, and the cached metadata that spares PySD on the next call."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from sdmodel.cli import main
from sdmodel.locations import read_cache
from sdmodel.metrics import METRICS


def test_describe_shows_equation_units_source_and_links():
    result = CliRunner().invoke(main, ["describe", "Financial Capital", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["kind"] == "stock" and found["units"] == "billion USD" and found["dims"] == ["Firm"]
    assert found["equation"].startswith("INTEG(") and "licence payments" in found["equation"]
    assert "licence payments (-)" in found["depends_on"] and "AI revenue (+)" in found["depends_on"]
    constant = json.loads(CliRunner().invoke(main, ["describe", "chinchilla alpha", "--json"]).stdout)
    assert constant["equation"] == "0.34" and "Hoffmann et al. 2022" in constant["source"]
    unknown = CliRunner().invoke(main, ["describe", "chinchila alpha"])
    assert unknown.exit_code == 2 and "did you mean 'chinchilla alpha'" in unknown.stderr


def test_describe_takes_the_comparisons_measures_and_explains_link_signs():
    """Every other command names a result by its measure key (`hhi`); describe does too, and offers measures for typos."""
    for metric in METRICS:
        found = json.loads(CliRunner().invoke(main, ["describe", metric.key, "--json"]).stdout)
        assert found["python_name"] == metric.variable and found["measure"]["select"] == metric.select, metric.key
    shown = CliRunner().invoke(main, ["describe", "hhi"]).stdout
    assert shown.startswith("hhi: Herfindahl index") and "(?) either way" in shown
    variable = CliRunner().invoke(
        main, ["describe", "capital shar"]
    )  # a variable's typo gets the variable, not a measure like it
    assert variable.exit_code == 2 and "did you mean 'capital share'?" in variable.stderr
    typo = CliRunner().invoke(main, ["describe", "data_paiments_cumulative"])
    assert typo.exit_code == 2 and "did you mean the measure 'data_payments_cumulative'?" in typo.stderr
    unlike = CliRunner().invoke(main, ["describe", "payments_total_so_far"])  # like nothing: no far-fetched suggestion
    assert unlike.exit_code == 2 and "did you mean" not in unlike.stderr


def test_describe_answers_from_the_cached_metadata_without_pysd(tmp_path):
    """The first describe of a model reads it through PySD and Simlin and caches what it read; the next imports
    neither, nor xarray (they took seconds), and says the same. A damaged cache file is read again, not trusted."""
    code = (
        "import json, sys; from click.testing import CliRunner; from sdmodel.cli import main\n"
        "out = CliRunner().invoke(main, ['describe', 'hhi', '--json']).stdout\n"
        "print(json.dumps([out, sorted(m for m in ('pysd', 'simlin', 'xarray') if m in sys.modules)]))"
    )
    env = {**os.environ, "SDMODEL_CACHE_DIR": str(tmp_path)}

    def describe() -> tuple[str, list[str]]:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        return tuple(json.loads(done.stdout))

    cold, warm = describe(), describe()
    assert cold[1] == ["pysd", "simlin", "xarray"] and warm[1] == []
    assert warm[0] == cold[0] and json.loads(warm[0])["equation"] == "SUM(squared_revenue_share[*])"
    (cached,) = (tmp_path / "metadata").iterdir()
    cached.write_text('{"variables": [')
    assert describe() == cold and json.loads(read_cache(cached))["variables"]  # read again, and cached again
