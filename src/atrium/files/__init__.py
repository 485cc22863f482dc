"""User files: upload, list, download, delete; malware scanning."""
