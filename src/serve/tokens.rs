//! API tokens for scripts: created with a secret shown once, stored hashed.
