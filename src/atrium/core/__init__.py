"""Infrastructure: database, cache, passwords, tokens, middleware. No business rules."""
