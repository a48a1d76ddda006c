"""Training configurations (ml_collections), one file per stage; see `common.base_config`."""
