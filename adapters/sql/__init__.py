"""SQL written once for every SQL adapter.

Statements use a portable subset of SQL with named parameters (`:name`). Each adapter gives a
`SqlSession` that runs them on its own driver and hands back rows as dicts with Python values
(aware datetimes, bools, decoded JSON), so the repositories here never see a dialect.
"""
