"""Knowledge base shipped as package data; the YAML files beside this are the knowledge."""
