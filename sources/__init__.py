"""solarsync sources: one package per API, plus ``common`` (the shared HTTP layer)."""
