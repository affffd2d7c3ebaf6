"""InfluxDB boundary: line protocol, the HTTP writer (v1 API: ``/write``, ``/query``) and its settings."""
