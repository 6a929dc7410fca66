"""Simulation engines. Only the modules in this package import an engine."""
