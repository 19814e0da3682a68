"""The HTTP face: the Flask app, the FHIR routes, conformance, API docs and the playground."""
