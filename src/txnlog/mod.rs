//! The transaction log: the format of segments and records [pure] and the writer thread that
//! appends batches and makes them durable [io].

pub mod format;
