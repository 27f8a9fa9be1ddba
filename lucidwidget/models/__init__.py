"""Model loading, layer lookup and activation taps."""
