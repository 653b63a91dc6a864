//! Nothing here: the tests are in tests/bindings.rs.
