//! placeholder until the harness lands

pub mod openapi;
