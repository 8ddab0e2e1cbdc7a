"""The Luigi task module: `luigi --module tasks Validate` from a workspace root."""
