//! The transaction log: the format of segments and records [pure], the writer thread that
//! appends batches and makes them durable [io], and recovery at startup [io].

pub mod format;
pub mod recovery;
pub mod writer;
