"""Importing accounts from other identity systems (docs/import.md)."""
