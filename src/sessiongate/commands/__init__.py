"""CLI command groups; every module here exporting ``command`` (a click command or group) is added to the CLI. What a
dialect administers has its group in the dialect (``DialectPlugin.commands``), found through ``_dialects``."""
