//! The compute device for WGSL kernels. A real GPU is used when one is present; software
//! adapters (llvmpipe) only when asked, because on them the CPU kernels are as fast — they are
//! for testing the WGSL twins on machines without a GPU.

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

/// A wgpu device and queue with a description of the adapter behind them.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter_info: wgpu::AdapterInfo,
}

impl GpuContext {
    /// Opens a device, or explains why none is available.
    pub fn new(choice: AdapterChoice) -> Result<Self, String> {
        if std::env::var("CRYOFORGE_GPU").is_ok_and(|v| v == "0") {
            return Err("GPU use disabled by CRYOFORGE_GPU=0".into());
        }
        if choice == AdapterChoice::HardwareOnly && !hardware_gpu_possible() {
            return Err("no GPU device nodes on this machine".into());
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
            .ok_or_else(|| match choice {
                AdapterChoice::HardwareOnly => "no hardware GPU adapter found".to_owned(),
                AdapterChoice::AllowSoftware => {
                    "no GPU or software (llvmpipe) adapter found; install mesa-vulkan-drivers".to_owned()
                }
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
        let (device, queue) = pollster::block_on(adapter.request_device(&descriptor))
            .map_err(|e| format!("{} ({:?}): {e}", adapter_info.name, adapter_info.backend))?;
        Ok(Self {
            device,
            queue,
            adapter_info,
        })
    }

    /// A compute pipeline for `entry` of `module`.
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

    /// A storage buffer holding `bytes` (readable back when `writable`).
    pub fn storage(&self, label: &str, bytes: &[u8], writable: bool) -> wgpu::Buffer {
        use wgpu::util::DeviceExt as _;
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

    pub fn uniform(&self, bytes: &[u8]) -> wgpu::Buffer {
        use wgpu::util::DeviceExt as _;
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytes,
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

    /// Copies `count` f32 values of `buffer` back to the CPU.
    pub fn read_back(&self, buffer: &wgpu::Buffer, count: usize) -> Result<Vec<f32>, String> {
        let bytes = (count.max(1) * 4) as u64;
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
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| e.to_string())?;
        rx.recv().map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        let view = slice.get_mapped_range().map_err(|e| e.to_string())?;
        let values = view
            .chunks_exact(4)
            .take(count)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
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

pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn u32_bytes(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// For tests of WGSL kernels: a device (hardware or llvmpipe), or None when there is none and
/// `CRYOFORGE_REQUIRE_GPU_ADAPTER` is unset (the test then skips; with it set, it fails).
#[cfg(test)]
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
