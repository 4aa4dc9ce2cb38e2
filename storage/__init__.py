"""howto storage package."""
