"""Layer 8: the papermill runner of the notebook grid."""
