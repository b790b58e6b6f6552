"""HTTP routes, one module per audience: auth, admin, ingest (meters), readings, ops."""
