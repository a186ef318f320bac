"""What the user describes: the target table, images.toml and its schema."""
