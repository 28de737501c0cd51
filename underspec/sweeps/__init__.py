"""Sweeps: grids too big for one sitting, run as papermill shards and aggregated. Only the CLI imports it."""
