"""Sample bundles shipped as package data (`spinefoot samples`, the playground, the OpenAPI examples)."""
