//! Shared nothing: the integration tests live in `api/`.
