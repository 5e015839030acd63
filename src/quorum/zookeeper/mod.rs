//! Apache ZooKeeper's server-to-server protocol as a second wire for the ZAB core
//! (`quorum.protocol=zookeeper`; DESIGN.md, "ZooKeeper's own formats"): a ringkeeper member
//! of an ensemble whose other members are Apache ZooKeeper 3.8/3.9.
//!
//! - [`wire`] [pure]: the bytes (election handshake, notifications, QuorumPacket,
//!   LearnerInfo, the data of REQUEST, PING, REVALIDATE);
//! - [`snapstream`] [pure]: the snapshot a leader streams after SNAP;
//! - [`txn`] [pure]: ZooKeeper's txns as ringkeeper's records and back, forwarded requests as REQUEST;
//! - [`translate`] [pure]: ZAB's messages to and from ZooKeeper's packets (Zab 1.0's sync
//!   differs from the core's in a few places, adapted there);
//! - [`lead`] [pure]: the leader's side, for the learners connected to this server's quorum
//!   port;
//! - [`links`] [io]: the sockets, as [`crate::quorum::QuorumLinks`].
//!
//! ringkeeper takes part as a **follower**, an **observer** or the **leader** (see README,
//! "Mixed ensembles").

pub mod lead;
pub mod links;
pub mod settle;
pub mod snapstream;
pub mod translate;
pub mod txn;
pub mod wire;
