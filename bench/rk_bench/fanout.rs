use crate::run::{Shared, WorkerResult};
pub fn run_fanout(_shared: &Shared) -> WorkerResult { WorkerResult::default() }
