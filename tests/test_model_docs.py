"""The model's documentation is generated from the model and checked against it."""

from __future__ import annotations

from sdmodel import modeldoc
from sdmodel.engines.simlin_structure import canonical, causal_links
from sdmodel.errors import InputError
from sdmodel.locations import default_model


def test_generated_files_are_current():
    assert modeldoc.main(["--check"]) == 0, "run: python -m sdmodel.modeldoc"


def test_every_named_loop_is_a_real_feedback_loop():
    links = causal_links(default_model())
    loops = modeldoc.load_loops()
    assert {loop["id"] for loop in loops} >= {"R1", "R2", "R3", "R4", "B1", "B2"}
    for loop in loops:
        chain = [canonical(name) for name in loop["variables"]]
        missing = [pair for pair in zip(chain, chain[1:] + chain[:1]) if pair not in links]
        assert not missing, f"{loop['id']}: no such link in the model: {missing}"
        assert loop["polarity"] in ("reinforcing", "balancing")


def test_loop_polarity_agrees_where_simlin_signs_every_link():
    links = causal_links(default_model())
    checked = 0
    for loop in modeldoc.load_loops():
        chain = [canonical(name) for name in loop["variables"]]
        signs = [links[pair] for pair in zip(chain, chain[1:] + chain[:1])]
        if "?" not in signs:
            checked += 1
            negative = signs.count("-") % 2 == 1
            assert negative == (loop["polarity"] == "balancing"), loop["id"]
    assert checked >= 1


def test_parameter_table_lists_every_constant_with_its_source():
    table = modeldoc.parameter_table(default_model())
    assert "| data strike fraction | 0 | Dmnl | 0 to 1 |" in table
    assert "Hoffmann et al. 2022" in table


def test_a_model_the_xmile_export_refuses_is_one_line_not_a_traceback(monkeypatch, capsys):
    def refuse():
        raise InputError(
            source="ai_power.mdl",
            key="prospective_share",
            problem="uses an array expression PySD's XMILE reader cannot read",
            fix="name the summed expression",
        )

    monkeypatch.setattr(modeldoc, "xmile", refuse)
    assert modeldoc.main(["--check"]) == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "prospective_share" in message
