"""What the session browser, compare view and new-run form draw."""
