"""CLI command groups; every module here exporting ``command`` (a click command or group) is added to the CLI."""
