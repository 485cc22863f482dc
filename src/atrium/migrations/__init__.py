"""Alembic migrations, shipped inside the package (script location ``atrium:migrations``)."""
