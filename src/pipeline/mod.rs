//! The write pipeline: prep [pure] validates requests against the pending tree and assigns
//! zxids; the driver [io] runs it on its own thread, makes batches durable, applies them and
//! publishes each new tree version, with its watch triggers and replies, to every core.

pub mod driver;
pub mod prep;
