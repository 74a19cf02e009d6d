"""The options several commands share, and the policy names in help texts, which come from the
registries (PRESETS, CALIBRATORS) rather than from a list written into the CLI."""

import pytest

from weightinit.cli import main
from weightinit.model import CALIBRATORS, PRESETS

SHARED = {
    "gain": ["--json"],
    "demo": ["--seed", "--width", "--json"],
    "plan": ["MODULE:FACTORY", "--input-shape", "--input-dtype", "--inputs", "--seed",
             "--width", "--wide", "--json"],
    "diagnose": ["MODULE:FACTORY", "--input-shape", "--input-dtype", "--inputs", "--seed",
                 "--width", "--json"],
    "checkpoint": ["MODULE:FACTORY", "--input-shape", "--input-dtype", "--inputs", "--seed",
                   "--json"],
}


def _help(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # one line: argparse wraps at any space


@pytest.mark.parametrize("command", sorted(SHARED))
def test_shared_options_are_on_every_command_that_takes_them(capsys, command):
    text = _help(capsys, command)
    for option in SHARED[command]:
        assert option in text, (command, option)
    if "--seed" in SHARED[command]:
        assert "(default 0)" in text
    if "--input-dtype" in SHARED[command]:
        assert "{auto,float,long}" in text


def test_gain_has_no_table_width(capsys):
    assert "--width" not in _help(capsys, "gain")


@pytest.mark.parametrize("command", ["plan", "diagnose"])
def test_help_lists_every_registered_policy(capsys, command):
    assert CALIBRATORS, "importing weightinit.model registers lsuv"
    text = _help(capsys, command)
    for name in [*PRESETS, *CALIBRATORS]:
        assert f" {name}" in text, (command, name)


def test_help_is_built_from_the_registries(capsys, monkeypatch):
    monkeypatch.setitem(CALIBRATORS, "mycal", lambda model, batch, seed=0: None)
    assert "or mycal (calibrates on" in _help(capsys, "plan")
    assert "mycal (calibrates on the same batch)" in _help(capsys, "diagnose")
