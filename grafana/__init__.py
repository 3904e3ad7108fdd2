"""Grafana dashboards for the monitor, generated from code (grafana-foundation-sdk).

``python -m grafana.build`` (or ``make dashboards``) writes ``grafana/dashboards/*.json``;
``--check`` fails when the checked-in JSON differs from what the code generates.
"""
