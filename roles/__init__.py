"""One module per role. Each exposes `async def main(settings, db) -> None`.

`ingestor role NAME` loads the role's settings, checks guardrails and the schema, opens the
database and runs `main` under trio. SIGTERM cancels `main`; a role flushes what it holds in
`finally` blocks under a shielded cancel scope with a deadline, then returns.
"""
