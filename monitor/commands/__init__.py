"""One module per CLI command; listed in :data:`monitor.cli.COMMANDS`."""
