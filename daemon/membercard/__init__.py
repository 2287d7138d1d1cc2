"""The member card application: card format v1, tear-safe stored value and points."""
