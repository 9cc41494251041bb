//! Integration tests through the HTTP API, one binary for all of them.

mod helpers;
mod feathers_rest;
