"""What a user of the scientific-Python ecosystem reads before citing or depending on sdmodel."""

from __future__ import annotations

import json
import tomllib

import jsonschema
import yaml
from paths import HERE

REPO = HERE.parent

SCHEMA = REPO / "tests" / "data" / "cff-1.2.0.schema.json"  # the Citation File Format's own schema, 1.2.0


def test_citation_file_validates_against_the_citation_file_format_schema():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    jsonschema.validate(citation, json.loads(SCHEMA.read_text()))  # raises with the failing field


def test_citation_licence_and_package_metadata_agree():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["version"] == project["version"]
    assert citation["license"] == project["license"] == "MIT"
    assert "MIT License" in (REPO / "LICENSE").read_text()


def test_changelog_keeps_an_unreleased_section():
    text = (REPO / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text and "keepachangelog.com" in text
