"""Spinefoot tests."""
