//! [pure] The wire codec: jute primitives, length-prefixed framing, the client records of
//! `zookeeper.jute`, the protocol's numeric constants and typed requests.

pub mod codec;
pub mod frame;
pub mod protocol;
pub mod records;
pub mod request;
pub mod response;

pub use codec::{JuteError, Reader, Record, Writer};
pub use protocol::{ErrorCode, EventType, KeeperState, OpCode};
