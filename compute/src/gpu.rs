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
        .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("renderD")))
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
            matches!(a.get_info().device_type, wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::VirtualGpu)
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
                AdapterChoice::AllowSoftware => "no GPU or software (llvmpipe) adapter found; install mesa-vulkan-drivers".to_owned(),
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
        Ok(Self { device, queue, adapter_info })
    }

    /// "NVIDIA GeForce … (Vulkan)".
    pub fn describe(&self) -> String {
        format!("{} ({:?}, {:?})", self.adapter_info.name, self.adapter_info.backend, self.adapter_info.device_type)
    }
}
