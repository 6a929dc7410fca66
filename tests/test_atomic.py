"""Files are written whole or not at all: a failed write leaves the old file and no temporary beside it."""

from __future__ import annotations

import pytest

from sdmodel import atomic


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "scenario.toml"
    target.write_text("old = 1\n")
    with pytest.raises(RuntimeError), atomic.temporary_file(target) as temporary:
        temporary.write_text("new = ")
        raise RuntimeError("the writer crashed half-way")
    assert target.read_text() == "old = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scenario.toml"]


def test_the_temporary_file_is_hidden_beside_the_target_with_its_suffix(tmp_path):
    with atomic.temporary_file(tmp_path / "figure.png") as temporary:
        assert temporary.parent == tmp_path
        assert temporary.name.startswith(".") and temporary.suffix == ".png"
        assert not (tmp_path / "figure.png").exists()  # nobody sees the file until it is whole
        temporary.write_bytes(b"png")
    assert (tmp_path / "figure.png").read_bytes() == b"png"


def test_write_text_replaces_the_file_whole(tmp_path):
    target = tmp_path / "page.html"
    target.write_text("<p>old</p>")
    assert atomic.write_text(target, "<p>néw</p>") == target
    assert target.read_text(encoding="utf-8") == "<p>néw</p>"
    assert len(list(tmp_path.iterdir())) == 1


def test_a_write_into_a_missing_folder_is_an_oserror_and_leaves_nothing(tmp_path):
    with pytest.raises(OSError):
        atomic.write_text(tmp_path / "nowhere" / "a.txt", "x")
    assert list(tmp_path.iterdir()) == []
