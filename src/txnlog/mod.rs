//! The transaction log: the format of segments and records [pure], the writer thread that
//! appends batches and makes them durable [io], recovery at startup [io], and loading the
//! whole state (snapshot plus log) [io].

pub mod format;
pub mod load;
pub mod recovery;
pub mod writer;
