//! The WGSL shaders as their pipelines compile them (shared files such as `camera.wgsl`
//! prepended) parse and validate with naga, and every Rust struct uploaded to a GPU buffer
//! matches its WGSL twin, so a broken shader or a struct out of sync fails the tests on machines
//! without a GPU.

use std::path::PathBuf;

use cryoforge_compute::gpu::GpuAtom;
use cryoforge_compute::maps::density_gpu::{self, DensityParams};
use cryoforge_compute::particles::projection_gpu::{self, ProjectionParams, ProjectionView};
use cryoforge_renderer::{
    CameraUniform, LineVertex, MeshVertex, PointInstance, PointsUniform, SphereInstance, shaders,
};

/// Every pipeline's source as it is compiled: (the file with its entry points, the source).
fn pipeline_sources() -> Vec<(&'static str, &'static str)> {
    let mut all = shaders::ALL.to_vec();
    all.push(("density.wgsl", density_gpu::SHADER));
    all.push(("projection.wgsl", projection_gpu::SHADER));
    all
}

fn pipeline_source(file: &str) -> &'static str {
    pipeline_sources()
        .into_iter()
        .find(|(name, _)| *name == file)
        .unwrap_or_else(|| panic!("no pipeline compiles {file}"))
        .1
}

/// Parses and validates `source`, panicking with naga's report.
fn validated(file: &str, source: &str) -> naga::Module {
    let module =
        naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(source)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(source)));
    module
}

#[test]
fn every_pipeline_source_validates() {
    for (file, source) in pipeline_sources() {
        let module = validated(file, source);
        assert!(!module.entry_points.is_empty(), "{file} has no entry point");
    }
}

#[test]
fn every_wgsl_file_is_compiled_by_a_pipeline() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shaders");
    let sources = pipeline_sources();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("shaders folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "wgsl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read shader");
        assert!(
            sources.iter().any(|(_, source)| source.contains(&text)),
            "{} is part of no pipeline's source, so nothing validates it",
            path.display()
        );
        checked += 1;
    }
    assert!(
        checked >= sources.len(),
        "only {checked} shaders found in {}",
        dir.display()
    );
}

/// Size and array stride of the struct `name` in `module`.
fn wgsl_layout(file: &str, module: &naga::Module, name: &str) -> (u32, u32) {
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).expect("layout");
    let (handle, _) = module
        .types
        .iter()
        .find(|(_, ty)| ty.name.as_deref() == Some(name) && matches!(ty.inner, naga::TypeInner::Struct { .. }))
        .unwrap_or_else(|| panic!("{file} has no struct {name}"));
    let layout = layouter[handle];
    (layout.size, layout.to_stride())
}

/// The structs uploaded to uniform and storage buffers: (pipeline file, WGSL struct, Rust size).
#[test]
fn buffer_structs_have_their_wgsl_sizes() {
    let table = [
        ("mesh.wgsl", "Camera", size_of::<CameraUniform>()),
        ("spheres.wgsl", "Camera", size_of::<CameraUniform>()),
        ("lines.wgsl", "Camera", size_of::<CameraUniform>()),
        ("points.wgsl", "View", size_of::<PointsUniform>()),
        ("density.wgsl", "Params", size_of::<DensityParams>()),
        ("density.wgsl", "Atom", size_of::<GpuAtom>()),
        ("projection.wgsl", "Params", size_of::<ProjectionParams>()),
        ("projection.wgsl", "Atom", size_of::<GpuAtom>()),
        ("projection.wgsl", "View", size_of::<ProjectionView>()),
    ];
    for (file, name, rust) in table {
        let module = validated(file, pipeline_source(file));
        let (size, stride) = wgsl_layout(file, &module, name);
        assert_eq!(
            rust, size as usize,
            "{file} `{name}`: {size} bytes in WGSL, {rust} in Rust"
        );
        // Arrays of the struct (storage buffers) step by the Rust size too.
        assert_eq!(
            rust, stride as usize,
            "{file} `{name}`: array stride {stride} in WGSL, {rust} in Rust"
        );
    }
}

fn components(format: wgpu::VertexFormat) -> u32 {
    match format {
        wgpu::VertexFormat::Float32 => 1,
        wgpu::VertexFormat::Float32x2 => 2,
        wgpu::VertexFormat::Float32x3 => 3,
        wgpu::VertexFormat::Float32x4 | wgpu::VertexFormat::Unorm8x4 => 4,
        other => panic!("add {other:?} to components()"),
    }
}

/// The `@location` inputs of `vs_main` in `module`: (location, components).
fn vertex_inputs(module: &naga::Module) -> Vec<(u32, u32)> {
    let entry = module
        .entry_points
        .iter()
        .find(|e| e.name == "vs_main")
        .expect("a vs_main entry point");
    let components = |ty: naga::Handle<naga::Type>| match module.types[ty].inner {
        naga::TypeInner::Scalar(_) => 1,
        naga::TypeInner::Vector { size, .. } => size as u32,
        ref other => panic!("vertex input of type {other:?}"),
    };
    let mut inputs = Vec::new();
    for argument in &entry.function.arguments {
        match (&argument.binding, &module.types[argument.ty].inner) {
            (Some(naga::Binding::Location { location, .. }), _) => inputs.push((*location, components(argument.ty))),
            (None, naga::TypeInner::Struct { members, .. }) => {
                for member in members {
                    if let Some(naga::Binding::Location { location, .. }) = member.binding {
                        inputs.push((location, components(member.ty)));
                    }
                }
            }
            _ => {}
        }
    }
    inputs.sort();
    inputs
}

/// Vertex and instance structs are read through vertex attributes, not WGSL struct layout: each
/// `@location` of `vs_main` has an attribute with as many components, and the attributes tile
/// the Rust struct without gaps or overlaps.
#[test]
fn vertex_structs_match_their_shader_inputs() {
    let table: [(&str, &[wgpu::VertexAttribute], usize); 4] = [
        ("mesh.wgsl", &MeshVertex::ATTRIBUTES, size_of::<MeshVertex>()),
        ("spheres.wgsl", &SphereInstance::ATTRIBUTES, size_of::<SphereInstance>()),
        ("lines.wgsl", &LineVertex::ATTRIBUTES, size_of::<LineVertex>()),
        ("points.wgsl", &PointInstance::ATTRIBUTES, size_of::<PointInstance>()),
    ];
    for (file, attributes, stride) in table {
        let module = validated(file, pipeline_source(file));
        let mut rust: Vec<(u32, u32)> = attributes
            .iter()
            .map(|a| (a.shader_location, components(a.format)))
            .collect();
        rust.sort();
        assert_eq!(
            vertex_inputs(&module),
            rust,
            "{file}: (location, components) of vs_main's inputs vs the Rust attributes"
        );
        let mut spans: Vec<(u64, u64)> = attributes
            .iter()
            .map(|a| (a.offset, a.offset + a.format.size()))
            .collect();
        spans.sort();
        let mut end = 0;
        for (start, stop) in spans {
            assert_eq!(start, end, "{file}: attributes leave a gap or overlap at byte {end}");
            end = stop;
        }
        assert_eq!(end as usize, stride, "{file}: attributes cover {end} of {stride} bytes");
    }
}
