use crate::run::{Shared, WorkerResult};
pub fn run_storm(_shared: &Shared) -> WorkerResult { WorkerResult::default() }
