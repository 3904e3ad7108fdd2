"""Where tagged posts go: the daily archive, metrics and publishers."""
