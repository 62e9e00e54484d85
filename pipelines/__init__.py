"""solarsync pipelines: the CLI and the assembly of dlt pipelines from sources."""
