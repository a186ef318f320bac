"""OCI images as bytes and their assembly into layouts, with provenance."""
