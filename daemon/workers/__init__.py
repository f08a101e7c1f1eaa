"""dramatiq actors: thin wrappers that load what they need, call a plain function, and write the
result with its outbox events in one transaction. ``entry`` is what the worker processes load."""
