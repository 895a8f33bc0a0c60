"""clipmark core: everything that is not the browser."""
