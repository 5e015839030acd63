//! [io] A non-blocking client connection driven by a mio readiness loop: an outgoing byte
//! buffer and an incoming frame decoder. Readiness is edge-triggered, so both directions are
//! drained until the socket would block.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use ringkeeper::jute::frame::FrameDecoder;

use crate::wire::REPLY_FRAME_BYTES_MAX;

/// Bytes read per read(2) call.
pub const READ_CHUNK_BYTES: usize = 256 * 1024;

pub struct Conn {
    pub stream: TcpStream,
    pub decoder: FrameDecoder,
    /// Bytes queued for the socket; `out[out_sent..]` is still to be written.
    pub out: Vec<u8>,
    out_sent: usize,
    /// When a request was last queued, to send pings only to idle sessions.
    pub last_send: Instant,
}

/// What a read pass found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    Open,
    /// The server closed the connection (or it failed); buffered frames may still be decoded.
    Closed,
}

impl Conn {
    pub fn connect(
        address: SocketAddr,
        registry: &Registry,
        token: Token,
        now: Instant,
    ) -> io::Result<Conn> {
        let mut stream = TcpStream::connect(address)?;
        // Requests are pipelined and flushed in batches; Nagle would only add delay.
        stream.set_nodelay(true)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Conn {
            stream,
            decoder: FrameDecoder::new(REPLY_FRAME_BYTES_MAX),
            out: Vec::with_capacity(64 * 1024),
            out_sent: 0,
            last_send: now,
        })
    }

    pub fn deregister(&mut self, registry: &Registry) {
        // A socket that already failed may refuse; it is dropped right after either way.
        let _ = registry.deregister(&mut self.stream);
    }

    /// Writes queued bytes until done or the socket would block. A connect still in progress
    /// reports NotConnected: the bytes wait for the writable event.
    pub fn flush(&mut self) -> io::Result<()> {
        while self.out_sent < self.out.len() {
            match self.stream.write(&self.out[self.out_sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.out_sent += written,
                Err(error)
                    if error.kind() == io::ErrorKind::WouldBlock
                        || error.kind() == io::ErrorKind::NotConnected =>
                {
                    break
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
        }
        if self.out_sent == self.out.len() {
            self.out.clear();
            self.out_sent = 0;
        }
        Ok(())
    }

    /// Reads everything available into the decoder.
    pub fn read_available(&mut self, scratch: &mut [u8]) -> ReadOutcome {
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return ReadOutcome::Closed,
                Ok(count) => self.decoder.extend(&scratch[..count]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return ReadOutcome::Open
                }
                Err(error) if error.kind() == io::ErrorKind::NotConnected => {
                    return ReadOutcome::Open
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return ReadOutcome::Closed,
            }
        }
    }
}

/// Frames of a low-rate connection, copied out so the caller may write to the same
/// connection while handling them. Err if the server sent an impossible frame length.
pub fn read_frames(
    conn: &mut Conn,
    scratch: &mut [u8],
) -> (Result<Vec<Vec<u8>>, String>, ReadOutcome) {
    let outcome = conn.read_available(scratch);
    let mut frames = Vec::new();
    loop {
        match conn.decoder.next_frame() {
            Ok(Some(frame)) => frames.push(frame.to_vec()),
            Ok(None) => return (Ok(frames), outcome),
            Err(error) => return (Err(error.to_string()), ReadOutcome::Closed),
        }
    }
}
