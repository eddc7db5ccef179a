"""Layer 5: pure scoring: metrics, calibration, temporal localization."""
