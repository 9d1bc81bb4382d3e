"""Where the bytes of artifacts are kept on the embedded default: files in a directory."""
