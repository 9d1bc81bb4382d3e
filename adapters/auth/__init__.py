"""Auth adapters (tokens, password hashing): arriving with the auth issue."""
