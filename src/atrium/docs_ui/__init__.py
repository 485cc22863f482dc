"""Interactive API documentation served offline, under a Content-Security-Policy."""
