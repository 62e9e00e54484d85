"""The analytics views, one ``<source>.sql`` per source in DuckDB's dialect (and
``<dialect>/<source>.sql`` where a dialect needs its own): package data read by
:mod:`pipelines.views` with :mod:`importlib.resources`."""
