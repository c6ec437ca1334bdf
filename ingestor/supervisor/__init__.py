"""`ingestor run`: each role in its own child process, restarted, scoped and logged.

Public pieces other commands use: `status_file.read_status`, `health.freshness_thresholds`,
`health.judge_freshness` and `healthz.serve_healthz`. Nothing here imports role code.
"""
