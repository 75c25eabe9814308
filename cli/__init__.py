"""The `outage` command and the processes it starts."""
