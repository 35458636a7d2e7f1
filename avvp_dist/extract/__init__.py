"""Video files to the published AVVP feature sets (`avvp-dist extract`, docs/extract.md)."""
