"""Email: the transactional outbox, templates and translations, and the delivery worker."""
