//! Shared helpers for voxgate's benchmarks and the `voxgate-load` generator.
