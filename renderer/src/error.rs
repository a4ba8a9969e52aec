//! What can go wrong when reading a render back.

/// Why a render could not be copied back to the CPU.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("nothing rendered yet")]
    NothingRendered,

    #[error("waiting for the GPU: {0}")]
    Poll(#[from] wgpu::PollError),

    #[error("mapping the read-back buffer: {0}")]
    BufferMap(#[from] wgpu::BufferAsyncError),

    #[error("the read-back buffer's mapping callback was dropped")]
    MappingDropped,

    #[error("reading the mapped buffer: {0}")]
    MappedRange(#[from] wgpu::MapRangeError),
}
