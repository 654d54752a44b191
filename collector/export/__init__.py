"""Monthly and yearly uptime export: figures per station, commune and province (issue 4).

Data flow: InfluxDB (``station_state``, ``broadcast``, ``telemetry``; schema v1) ->
``influx_source`` -> pure ``figures``/``communes`` arithmetic (shared with the health engine
through ``collector.health.availability``) -> CSV / XLSX / PNG-PDF writers and the upstream
JSON report (``REPORT_API.md``).
"""
