"""Value sets (package data)."""
