"""Layer 8: figures, the frame inspector and the HTML report."""
