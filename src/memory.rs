//! The allocator's "return freed memory to the OS now": the binary (which chooses the
//! allocator) installs it, the pipeline and the snapshot thread call it after dropping much
//! memory at once. A module of its own below every layer that calls it, so that nothing has
//! to call into `runtime` (which starts things and is called by nothing).

/// The allocator's "return freed memory to the OS now", installed by the binary (which chooses
/// the allocator); the library calls it after it dropped much memory at once.
static MEMORY_RELEASE: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Installs the call that returns freed memory to the OS (at most once; later calls are
/// ignored). Without one, [`release_memory`] does nothing.
pub fn set_memory_release(release: fn()) {
    let _ = MEMORY_RELEASE.set(release);
}

/// Returns the memory this thread's allocator holds freed to the OS, if the binary installed a
/// way to. Called by the pipeline after a rebase dropped the old delta, and by the snapshot
/// thread when it is done.
pub fn release_memory() {
    if let Some(release) = MEMORY_RELEASE.get() {
        release();
    }
}
