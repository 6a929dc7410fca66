"""What a model offers to scenarios (sdmodel/model.py): a variable found by its Vensim or Python name or a "did you
mean" for a typo, units as a reader reads them, unit conversions told from assumptions, and a file's content hash.
(normalise, canonical and reader_units have doctests too; the bundled model itself is tests/test_model_*.py's.)"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sdmodel.errors import InputError
from sdmodel.model import ModelInfo, Variable, file_sha256, reader_units, with_units


def info(*variables: Variable) -> ModelInfo:
    return ModelInfo(path=Path("toy.mdl"), sha256="0" * 64, variables={v.py_name: v for v in variables})


STRIKE = Variable("data_strike_fraction", "data strike fraction", "constant", "Dmnl")
CAPITAL = Variable("financial_capital", "Financial Capital", "stock", "billion USD")


@pytest.mark.parametrize(
    "written", ["data strike fraction", "data_strike_fraction", "Data  Strike_Fraction", " DATA STRIKE FRACTION "]
)
def test_a_variable_is_found_by_either_spelling(written):
    assert info(STRIKE, CAPITAL).resolve(written, "s.toml", "params") is STRIKE


def test_the_first_of_two_variables_with_one_name_wins():
    first = Variable("x", "Level", "stock")
    second = Variable("level", "other", "auxiliary")  # its Python name normalises to the first's Vensim name
    assert info(first, second).resolve("level", "s.toml", "params") is first


def test_a_typo_gets_the_closest_name_and_nonsense_gets_none():
    model = info(STRIKE, CAPITAL)
    with pytest.raises(InputError) as typo:
        model.resolve("data strik fraction", "s.toml", "params")
    message = str(typo.value)
    assert "'data strik fraction' is not a variable of toy.mdl" in message
    assert "did you mean 'data strike fraction'?" in message and "s.toml" in message and "params" in message
    with pytest.raises(InputError) as nonsense:
        model.resolve("qqqq", "s.toml", "params")
    assert "did you mean" not in str(nonsense.value) and "sdmodel describe --model" in str(nonsense.value)


@pytest.mark.parametrize(
    "units, name, shown",
    [
        ("Dmnl", "incumbent revenue share", "share"),
        ("dimensionless", "coverage of the strike", "share"),
        ("1", "model capability", "index"),
        ("DMNL", "Revenue Concentration Index", "index"),
        ("Dmnl", "share sensitivity", "dimensionless"),  # a share's sensitivity is no share
        ("Dmnl", "strike_target", "dimensionless"),
        ("billion USD", "revenue share", "billion USD"),  # real units are kept, whatever the name
        ("", "revenue share", ""),  # no units written is unknown, not none
    ],
)
def test_reader_units(units, name, shown):
    assert reader_units(units, name) == shown


def test_with_units_reads_the_label_unless_a_name_is_given():
    assert with_units("revenue share", "Dmnl") == "revenue share [share]"
    assert with_units("HHI", "Dmnl", "revenue_concentration_index") == "HHI [index]"
    assert with_units("x", "") == "x"


def test_a_unit_conversion_is_a_constant_that_says_so():
    assert Variable("hours_per_year", "hours per year", "constant", comment="Unit conversion.").is_unit_conversion
    assert Variable("usd", "usd", "constant", comment="Unit of account: USD per billion.").is_unit_conversion
    assert not Variable("a", "a", "auxiliary", comment="Unit conversion.").is_unit_conversion
    assert not Variable("b", "b", "constant", comment="A unit conversion would say so first.").is_unit_conversion
    assert STRIKE.attrs == {"units": "Dmnl", "long_name": "data strike fraction", "description": "", "sd_kind": "constant"}


def test_file_sha256_is_the_hash_of_the_whole_content(tmp_path):
    big = tmp_path / "big.mdl"
    content = bytes(range(256)) * 40_000  # 10 MB: read in blocks, all of them
    big.write_bytes(content)
    assert file_sha256(big) == hashlib.sha256(content).hexdigest()
    (tmp_path / "empty.mdl").write_bytes(b"")
    assert file_sha256(tmp_path / "empty.mdl") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
