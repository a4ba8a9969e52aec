//! cryoforge's renderer: wgpu pipelines for maps and models (no burn, no domain logic).
