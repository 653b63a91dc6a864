//! Shared by the hub benchmarks (each uses part of it).
#![allow(dead_code)]

pub mod hub;
