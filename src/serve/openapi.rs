//! The API's OpenAPI 3 description, served at `/api/v1/openapi.json`. Written by hand beside the
//! handlers (src/serve/api.rs) and checked against the server by schemathesis in the tests.

pub const DOCUMENT: &str = include_str!("openapi.json");
