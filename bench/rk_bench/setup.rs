//! [io] Pre-population and cleanup of a run's znodes over one blocking session, pipelined so
//! that creating a large key set takes seconds, not minutes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ringkeeper::jute::frame::FrameDecoder;
use ringkeeper::jute::protocol::OpCode;
use ringkeeper::jute::{Reader, Writer};

use crate::value::value_for;
use crate::wire::{self, REPLY_FRAME_BYTES_MAX};

/// Requests in flight during setup and cleanup.
const SETUP_WINDOW: usize = 256;
const SETUP_IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The key whose value is the watch-fanout node's (outside the key range of any run).
pub const WATCH_KEY: u32 = u32::MAX;

pub struct SyncClient {
    stream: TcpStream,
    decoder: FrameDecoder,
    next_xid: i32,
}

/// One request for `SyncClient::run_all`: opcode and encoded body.
pub struct Call {
    pub op: OpCode,
    pub body: Vec<u8>,
}

impl Call {
    pub fn new(op: OpCode, encode: impl FnOnce(&mut Writer)) -> Call {
        let mut writer = Writer::new();
        encode(&mut writer);
        Call {
            op,
            body: writer.into_bytes(),
        }
    }
}

impl SyncClient {
    pub fn connect(address: SocketAddr, timeout_ms: i32) -> Result<SyncClient, String> {
        let stream = TcpStream::connect_timeout(&address, SETUP_IO_TIMEOUT)
            .map_err(|e| format!("connect to {address}: {e}"))?;
        stream
            .set_read_timeout(Some(SETUP_IO_TIMEOUT))
            .and_then(|_| stream.set_write_timeout(Some(SETUP_IO_TIMEOUT)))
            .and_then(|_| stream.set_nodelay(true))
            .map_err(|e| format!("socket options: {e}"))?;
        let mut client = SyncClient {
            stream,
            decoder: FrameDecoder::new(REPLY_FRAME_BYTES_MAX),
            next_xid: 1,
        };
        let mut out = Vec::new();
        wire::push_connect(&mut out, timeout_ms);
        client.write(&out)?;
        let frame = client.read_frame()?;
        let response = wire::parse_connect_response(&frame)
            .map_err(|e| format!("bad ConnectResponse: {e}"))?;
        if response.time_out <= 0 {
            return Err("server refused the session (timeout 0)".into());
        }
        Ok(client)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .map_err(|e| format!("write: {e}"))
    }

    fn read_frame(&mut self) -> Result<Vec<u8>, String> {
        let mut scratch = [0u8; 64 * 1024];
        loop {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => return Ok(frame.to_vec()),
                Ok(None) => {}
                Err(e) => return Err(format!("bad frame: {e}")),
            }
            let count = self
                .stream
                .read(&mut scratch)
                .map_err(|e| format!("read: {e}"))?;
            if count == 0 {
                return Err("server closed the connection".into());
            }
            self.decoder.extend(&scratch[..count]);
        }
    }

    /// Runs `calls` with up to SETUP_WINDOW in flight; returns (error code, reply body) of each,
    /// in order. Notifications and ping replies are skipped.
    pub fn run_all(&mut self, calls: Vec<Call>) -> Result<Vec<(i32, Vec<u8>)>, String> {
        let mut results = Vec::with_capacity(calls.len());
        let mut sent = 0usize;
        while results.len() < calls.len() {
            let mut out = Vec::new();
            while sent < calls.len() && sent - results.len() < SETUP_WINDOW {
                let call = &calls[sent];
                let xid = self.next_xid;
                self.next_xid += 1;
                out.extend_from_slice(&raw_frame(xid, call.op, &call.body));
                sent += 1;
            }
            if !out.is_empty() {
                self.write(&out)?;
            }
            let frame = self.read_frame()?;
            let mut reader = Reader::new(&frame);
            let header =
                wire::parse_reply_header(&mut reader).map_err(|e| format!("bad reply: {e}"))?;
            if header.xid < 0 {
                continue;
            }
            let expected = self.next_xid - (sent - results.len()) as i32;
            if header.xid != expected {
                return Err(format!("reply xid {} expected {expected}", header.xid));
            }
            results.push((header.err, frame[reader.offset()..].to_vec()));
        }
        Ok(results)
    }

    pub fn close(mut self) {
        let xid = self.next_xid;
        // Best effort: the session expires on its own if this fails.
        if self
            .write(&raw_frame(xid, OpCode::CloseSession, &[]))
            .is_ok()
        {
            let _ = self.read_frame();
        }
    }
}

/// A request frame around an already encoded body.
fn raw_frame(xid: i32, op: OpCode, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(12 + body.len());
    frame.extend_from_slice(&((8 + body.len()) as i32).to_be_bytes());
    frame.extend_from_slice(&xid.to_be_bytes());
    frame.extend_from_slice(&(op as i32).to_be_bytes());
    frame.extend_from_slice(body);
    frame
}

/// The znodes of one run.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: String,
    pub keys_dir: String,
    pub create_dir: String,
    pub ephemeral_dir: String,
    pub watch_path: String,
    pub key_paths: Vec<String>,
}

impl Layout {
    pub fn new(root: &str, key_count: usize) -> Layout {
        let keys_dir = format!("{root}/keys");
        Layout {
            root: root.to_owned(),
            key_paths: (0..key_count).map(|i| format!("{keys_dir}/k{i}")).collect(),
            keys_dir,
            create_dir: format!("{root}/c"),
            ephemeral_dir: format!("{root}/e"),
            watch_path: format!("{root}/w"),
        }
    }
}

/// Creates the root, its directories and every key at sequence 0.
pub fn populate(
    client: &mut SyncClient,
    layout: &Layout,
    value_bytes: usize,
) -> Result<(), String> {
    let directories = [
        (&layout.root, Vec::new()),
        (&layout.keys_dir, Vec::new()),
        (&layout.create_dir, Vec::new()),
        (&layout.ephemeral_dir, Vec::new()),
        (&layout.watch_path, value_for(WATCH_KEY, 0, value_bytes)),
    ];
    let calls = directories
        .iter()
        .map(|(path, data)| Call::new(OpCode::Create, |w| wire::write_create(w, path, data, 0)))
        .collect();
    for ((path, _), (err, _)) in directories.iter().zip(client.run_all(calls)?) {
        if err != 0 {
            return Err(format!(
                "create {path}: error {err} ({}); pick another --root",
                crate::stats::error_name(err)
            ));
        }
    }
    let calls = layout
        .key_paths
        .iter()
        .enumerate()
        .map(|(index, path)| {
            let value = value_for(index as u32, 0, value_bytes);
            Call::new(OpCode::Create, |w| wire::write_create(w, path, &value, 0))
        })
        .collect();
    for (index, (err, _)) in client.run_all(calls)?.into_iter().enumerate() {
        if err != 0 {
            return Err(format!("create key {index}: error {err}"));
        }
    }
    Ok(())
}

/// Deletes what the run created: `extra` (created znodes), the keys, the directories, the root.
/// Returns how many deletes failed with something other than NoNode.
pub fn cleanup(
    client: &mut SyncClient,
    layout: &Layout,
    extra: &[String],
) -> Result<usize, String> {
    let mut paths: Vec<&str> = extra.iter().map(String::as_str).collect();
    paths.extend(layout.key_paths.iter().map(String::as_str));
    let mut failures = 0;
    let calls = paths
        .iter()
        .map(|path| delete_call(path))
        .collect::<Vec<_>>();
    failures += count_failures(client.run_all(calls)?);
    for path in [
        &layout.keys_dir,
        &layout.create_dir,
        &layout.ephemeral_dir,
        &layout.watch_path,
        &layout.root,
    ] {
        failures += count_failures(client.run_all(vec![delete_call(path)])?);
    }
    Ok(failures)
}

fn delete_call(path: &str) -> Call {
    Call::new(OpCode::Delete, |w| {
        w.write_string(path);
        w.write_i32(-1);
    })
}

fn count_failures(results: Vec<(i32, Vec<u8>)>) -> usize {
    results
        .iter()
        .filter(|(err, _)| *err != 0 && *err != -101)
        .count()
}
