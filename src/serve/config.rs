//! `serve.yaml`: the console's configuration.
