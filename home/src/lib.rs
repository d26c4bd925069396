//! CometBFT home generation: keys, genesis and config.toml (not written yet).
