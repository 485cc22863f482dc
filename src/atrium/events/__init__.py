"""Domain events: the catalogue, emitting in a change's transaction, delivery to consumers."""
