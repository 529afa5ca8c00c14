"""Built-in recipes (TOML files); this file only makes the folder an importable package."""
