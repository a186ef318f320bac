"""The OCI distribution client: references, transport, auth, push plans and pushes,
referrers, inspect."""
