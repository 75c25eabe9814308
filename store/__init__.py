"""What web/ and workers/ share: settings, Redis connections, the key schema, the catalog,
logs, metrics and the data both read or write (minute hashes, incidents, detector state)."""
