"""Segmentation helpers around the Segment Anything adapter (core.models.sam): mask encodings and
drawings in numpy only (masks), and image embeddings computed once and cached on disk (cache)."""
