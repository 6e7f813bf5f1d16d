//! Test doubles shared by the client-core scenario tests.

pub mod hostile_relay;
