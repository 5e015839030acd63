//! The write pipeline: pure stages driven by the pipeline thread's shells.
//!
//! - [`prep`] [pure]: validates a request against the pending tree (ACLs, versions, paths)
//!   and turns it into a transaction, or an error code.
//! - [`apply`] [pure]: applies transactions to the pending tree, cuts tree versions (steps),
//!   and orders the replies after them.
//! - [`publish`] [pure]: turns a sealed batch into what each core is sent.
//! - [`reply`] [pure]: the reply frames the pipeline computes.
//! - [`local`] [pure]: the rules of local sessions and read-only mode.
//! - [`driver`] [io]: the thread and its standalone and ensemble shells, which decide when a
//!   batch is durable or committed, and so may be published.

pub mod apply;
pub mod driver;
mod input;
pub mod local;
pub mod prep;
pub mod publish;
pub mod reply;

pub use input::{DurableState, PipelineInput, Restore};
pub use publish::{CoreBatch, CorePresence, CoreReply, Step};
pub use reply::write_reply;
