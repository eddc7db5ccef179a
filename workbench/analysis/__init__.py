"""Layer 7: reading runs, tables, localization and attribution per condition, the demo's evidence."""
