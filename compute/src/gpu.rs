//! The compute device for WGSL kernels. A real GPU is used when one is present; software
//! adapters (llvmpipe) only when asked, because on them the CPU kernels are as fast — they are
//! for testing the WGSL twins on machines without a GPU.

/// Why no device could be opened, or a kernel's results could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("GPU use disabled by CRYOFORGE_GPU=0")]
    Disabled,

    #[error("no GPU device nodes on this machine")]
    NoDeviceNodes,

    #[error("no hardware GPU adapter found")]
    NoHardwareAdapter,

    #[error("no GPU or software (llvmpipe) adapter found; install mesa-vulkan-drivers")]
    NoAdapter,

    #[error("{adapter} ({backend:?}): {source}")]
    RequestDevice {
        adapter: String,
        backend: wgpu::Backend,
        #[source]
        source: wgpu::RequestDeviceError,
    },

    #[error("waiting for the GPU: {0}")]
    Poll(#[from] wgpu::PollError),

    #[error("mapping a read-back buffer: {0}")]
    BufferMap(#[from] wgpu::BufferAsyncError),

    #[error("the read-back buffer's mapping callback was dropped")]
    MappingDropped,

    #[error("reading a mapped buffer: {0}")]
    MappedRange(#[from] wgpu::MapRangeError),
}

/// One atom as the density and projection kernels read it: position (Å) and amplitude, 16 bytes.
/// Keep in sync with `Atom` in shaders/density.wgsl and shaders/projection.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GpuAtom {
    pub position: [f32; 3],
    pub amplitude: f32,
}

/// Which adapters may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterChoice {
    /// Only a hardware GPU (discrete or integrated); None if there is none.
    HardwareOnly,
    /// A hardware GPU if present, else a software adapter such as llvmpipe.
    AllowSoftware,
}

/// Whether this machine may have a hardware GPU. On Linux every hardware adapter wgpu can use
/// appears as a DRM render node or an NVIDIA device node; without one, probing would only find
/// software adapters (and wake their thread pools), so callers that want hardware skip it.
pub fn hardware_gpu_possible() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let has_render_node = std::fs::read_dir("/dev/dri")
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
        })
        .unwrap_or(false);
    has_render_node || std::path::Path::new("/dev/nvidiactl").exists()
}

/// A WGSL kernel's forward and backward pipelines, compiled once on one device.
pub struct Kernels {
    pub context: GpuContext,
    pub forward: wgpu::ComputePipeline,
    pub backward: wgpu::ComputePipeline,
}

impl Kernels {
    pub fn new(context: GpuContext, label: &str, source: &str, [forward, backward]: [&str; 2]) -> Self {
        let [forward, backward] = context.pipelines(label, source, [forward, backward]);
        Self {
            context,
            forward,
            backward,
        }
    }
}

/// A wgpu device and queue with a description of the adapter behind them.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter_info: wgpu::AdapterInfo,
}

impl GpuContext {
    /// Opens a device, or explains why none is available.
    pub fn new(choice: AdapterChoice) -> Result<Self, GpuError> {
        if std::env::var("CRYOFORGE_GPU").is_ok_and(|v| v == "0") {
            return Err(GpuError::Disabled);
        }
        if choice == AdapterChoice::HardwareOnly && !hardware_gpu_possible() {
            return Err(GpuError::NoDeviceNodes);
        }
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        let is_hardware = |a: &wgpu::Adapter| {
            matches!(
                a.get_info().device_type,
                wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::VirtualGpu
            )
        };
        let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            _ => 3,
        };
        let adapter = adapters
            .into_iter()
            .filter(|a| choice == AdapterChoice::AllowSoftware || is_hardware(a))
            .min_by_key(rank)
            .ok_or(match choice {
                AdapterChoice::HardwareOnly => GpuError::NoHardwareAdapter,
                AdapterChoice::AllowSoftware => GpuError::NoAdapter,
            })?;
        let adapter_info = adapter.get_info();
        let limits = adapter.limits();
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("cryoforge compute"),
            required_limits: wgpu::Limits {
                max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
                max_buffer_size: limits.max_buffer_size,
                ..wgpu::Limits::default()
            },
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&descriptor)).map_err(|source| GpuError::RequestDevice {
                adapter: adapter_info.name.clone(),
                backend: adapter_info.backend,
                source,
            })?;
        Ok(Self {
            device,
            queue,
            adapter_info,
        })
    }

    /// A compute pipeline for `entry` of `module`.
    /// Compiles the WGSL `source` once and a compute pipeline for each of `entries`.
    pub fn pipelines<const N: usize>(
        &self,
        label: &str,
        source: &str,
        entries: [&str; N],
    ) -> [wgpu::ComputePipeline; N] {
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        entries.map(|entry| self.pipeline(&module, entry))
    }

    pub fn pipeline(&self, module: &wgpu::ShaderModule, entry: &str) -> wgpu::ComputePipeline {
        self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        })
    }

    /// A storage buffer holding `values` (readable back when `writable`).
    pub fn storage<T: bytemuck::Pod>(&self, label: &str, values: &[T], writable: bool) -> wgpu::Buffer {
        use wgpu::util::DeviceExt as _;
        let bytes: &[u8] = bytemuck::cast_slice(values);
        // wgpu refuses zero-sized bindings: pad empty inputs to one word.
        let contents: &[u8] = if bytes.is_empty() { &[0u8; 4] } else { bytes };
        let usage = if writable {
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC
        } else {
            wgpu::BufferUsages::STORAGE
        };
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage,
        })
    }

    /// A uniform buffer holding `value` (a `#[repr(C)]` mirror of a WGSL struct).
    pub fn uniform<T: bytemuck::Pod>(&self, value: &T) -> wgpu::Buffer {
        use wgpu::util::DeviceExt as _;
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::bytes_of(value),
            usage: wgpu::BufferUsages::UNIFORM,
        })
    }

    /// Runs `pipeline` once per invocation (folded into a 2D dispatch, see [`dispatch_size`]).
    pub fn run(&self, pipeline: &wgpu::ComputePipeline, entries: &[(u32, &wgpu::Buffer)], invocations: usize) {
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry<'_>> = entries
            .iter()
            .map(|&(binding, buffer)| wgpu::BindGroupEntry {
                binding,
                resource: buffer.as_entire_binding(),
            })
            .collect();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            let (x, y, _) = dispatch_size(invocations);
            pass.dispatch_workgroups(x, y, 1);
        }
        self.queue.submit([encoder.finish()]);
    }

    /// Copies the first `count` values of `buffer` back to the CPU.
    pub fn read_back<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer, count: usize) -> Result<Vec<T>, GpuError> {
        // Copies move whole words; a zero-sized copy is refused.
        let bytes = (count * size_of::<T>()).max(4).next_multiple_of(4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device.poll(wgpu::PollType::wait_indefinitely())?;
        rx.recv().map_err(|_| GpuError::MappingDropped)??;
        let view = slice.get_mapped_range()?;
        // The mapping need not be aligned for `T`: copy rather than cast in place.
        let values = bytemuck::pod_collect_to_vec(&view[..count * size_of::<T>()]);
        drop(view);
        staging.unmap();
        Ok(values)
    }

    /// "NVIDIA GeForce … (Vulkan)".
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.adapter_info.name, self.adapter_info.backend, self.adapter_info.device_type
        )
    }
}

/// Invocations per workgroup of every cryoforge compute shader.
pub const WORKGROUP: u32 = 64;

/// Workgroup counts for `n` invocations, folded into 2D when x alone would exceed the limit;
/// the third value is the invocations per row (the shaders' `row_stride`).
pub fn dispatch_size(n: usize) -> (u32, u32, u32) {
    let groups = (n as u32).div_ceil(WORKGROUP).max(1);
    let x = groups.min(65_535);
    (x, groups.div_ceil(x), x * WORKGROUP)
}

/// For tests of WGSL kernels (here and in other crates): a device (hardware or llvmpipe), or None
/// when there is none and `CRYOFORGE_REQUIRE_GPU_ADAPTER` is unset (the test then skips; with it
/// set, it fails).
pub fn test_context() -> Option<GpuContext> {
    match GpuContext::new(AdapterChoice::AllowSoftware) {
        Ok(c) => {
            eprintln!("adapter: {}", c.describe());
            Some(c)
        }
        Err(why) => {
            assert!(
                std::env::var("CRYOFORGE_REQUIRE_GPU_ADAPTER").is_err(),
                "no adapter: {why}"
            );
            eprintln!("skipped: {why}");
            None
        }
    }
}
