//! Paths of the guests built from source by `build.rs`: the shipped plugins
//! and the misbehaving / versioned fixtures the tests use.

include!(concat!(env!("OUT_DIR"), "/gen.rs"));
