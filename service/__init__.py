"""Spinefoot: is this foot pain from the back? A FHIR R4 rule-based expert system."""
