"""Applications built on Atrium: ``atrium.apps.<name>``, each mounted only when listed in
``ATRIUM_APPS`` (see :mod:`atrium.core.apps` and docs/architecture.md, "Adding an
application"). The platform never imports this package; applications may import any
part of the platform."""
