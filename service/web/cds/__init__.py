"""CDS Hooks 2.0: discovery, service calls, prefetch and FHIR fetches, JWT auth, cards."""
