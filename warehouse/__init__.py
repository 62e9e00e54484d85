"""The folder BI users know: the SQL views (``warehouse.views``, shipped as package data) and, in
a checkout or a project directory, the default DuckDB file, the lake and the blobs (git-ignored,
never packaged)."""
