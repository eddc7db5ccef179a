"""Layer 2: videos into records (face and mouth tracking, audio, the ingest pipeline)."""
