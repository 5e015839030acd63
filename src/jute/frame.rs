//! Length-prefixed framing: every client message is a 4-byte big-endian length followed by
//! that many bytes. ZooKeeper (NIOServerCnxn.readLength) rejects a length that is negative or
//! larger than `jute.maxbuffer` and closes the connection; so do we.

use thiserror::Error;

/// ZooKeeper's default `jute.maxbuffer`: 0xfffff bytes.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 0xfffff;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame length {length} is negative")]
    NegativeLength { length: i32 },
    #[error("frame length {length} exceeds the limit of {limit} bytes (jute.maxbuffer)")]
    TooLarge { length: usize, limit: usize },
}

/// Accumulates bytes from a socket and yields whole frames.
#[derive(Debug)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
    consumed: usize,
    max_frame_bytes: usize,
}

impl FrameDecoder {
    pub fn new(max_frame_bytes: usize) -> Self {
        FrameDecoder {
            buffer: Vec::with_capacity(4096),
            consumed: 0,
            max_frame_bytes,
        }
    }

    /// Appends bytes read from the socket.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.consumed > 0 && self.consumed == self.buffer.len() {
            self.buffer.clear();
            self.consumed = 0;
        } else if self.consumed > self.buffer.capacity() / 2 {
            self.buffer.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole frame's body, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let pending = &self.buffer[self.consumed..];
        if pending.len() < 4 {
            return Ok(None);
        }
        let length = i32::from_be_bytes([pending[0], pending[1], pending[2], pending[3]]);
        if length < 0 {
            return Err(FrameError::NegativeLength { length });
        }
        let length = length as usize;
        if length > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                length,
                limit: self.max_frame_bytes,
            });
        }
        if pending.len() < 4 + length {
            return Ok(None);
        }
        let start = self.consumed + 4;
        self.consumed = start + length;
        Ok(Some(&self.buffer[start..start + length]))
    }

    /// The first `count` unconsumed bytes, if that many have arrived.
    pub fn peek(&self, count: usize) -> Option<&[u8]> {
        self.buffer.get(self.consumed..self.consumed + count)
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.consumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_are_reassembled() {
        let mut decoder = FrameDecoder::new(100);
        decoder.extend(&[0, 0, 0, 3, b'a']);
        assert_eq!(decoder.next_frame(), Ok(None));
        decoder.extend(&[b'b', b'c', 0, 0, 0, 0]);
        assert_eq!(decoder.next_frame(), Ok(Some(&b"abc"[..])));
        assert_eq!(decoder.next_frame(), Ok(Some(&b""[..])));
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn oversized_and_negative_lengths_are_errors() {
        let mut decoder = FrameDecoder::new(10);
        decoder.extend(&[0, 0, 0, 11]);
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::TooLarge {
                length: 11,
                limit: 10
            })
        );
        let mut decoder = FrameDecoder::new(10);
        decoder.extend(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::NegativeLength { length: -1 })
        );
    }
}
