"""Distributions files: what they accept, and one line naming the file, the key and the fix for what they refuse."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from paths import BAD

from sdmodel.cli import main
from sdmodel.distributions import load_distributions
from sdmodel.engines import simlin
from sdmodel.errors import InputError
from sdmodel.locations import default_model

# bad distribution files: the file, the key the message must name, and a word of the fix
BAD_DISTRIBUTIONS = [
    ("dist-unknown-parameter.toml", 'params."data strik fraction"', "did you mean 'data strike fraction'"),
    ("dist-lower-above-upper.toml", 'params."data strike fraction".lower', "make lower less than upper"),
    ("dist-wrong-argument.toml", 'params."share sensitivity".sigma', "truncnormal takes mean, sd, lower, upper"),
    ("dist-missing-argument.toml", 'params."hardware life"', "give lower, mode, upper"),
    ("dist-out-of-range.toml", 'params."data strike fraction".upper', "within [0, 1]"),
    ("dist-unbounded.toml", 'params."data strike fraction".dist', "truncnormal"),
    ("dist-unknown-distribution.toml", 'params."data strike fraction".dist', "did you mean 'uniform'"),
    ("dist-not-a-number.toml", 'params."collective bargaining weight".lower', "give a number"),
    ("dist-huge-integer.toml", 'params."collective bargaining weight".upper', "within floating-point range"),
    ("dist-lognormal-overflow.toml", 'params."initial users[open]".mu', "mu within +-700"),
    ("dist-not-a-name.toml", 'params."share sensitivity".dist', "choose one of uniform"),
    ("dist-bad-mode.toml", 'params."hardware life".mode', "between lower and upper"),
    ("dist-not-a-constant.toml", 'params."model capability"', "constants it depends on"),
]


@pytest.mark.parametrize(("file", "key", "fix"), BAD_DISTRIBUTIONS, ids=[case[0] for case in BAD_DISTRIBUTIONS])
def test_bad_distribution_file(file, key, fix, isolated_runs_dir):
    result = CliRunner().invoke(main, ["uncertainty", str(BAD / file), "--samples", "3"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in (file, key, fix):
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert not isolated_runs_dir.exists() or not any(isolated_runs_dir.iterdir())


@pytest.mark.parametrize("name", ["größe", "data strike fraction"])
def test_a_key_outside_tomls_bare_keys_is_quoted_in_the_message(name, tmp_path):
    """TOML's bare keys are ASCII letters, digits, _ and -: any other key is named the way the file must write it."""
    path = tmp_path / "ranges.toml"
    path.write_text(f'[params."{name}"]\ndist = "uniform"\nlower = 0\nupper = 1e400\n', encoding="utf-8")
    with pytest.raises(InputError) as raised:
        load_distributions(path, simlin.model_info(default_model()))
    assert raised.value.key.startswith(f'params."{name}"')
