"""howto flows package."""
