"""InfluxDB boundary: line protocol encoding, the HTTP writer (v1 API: ``/write``, ``/query``) and settings."""
