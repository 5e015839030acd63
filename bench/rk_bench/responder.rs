//! [io] The trivial responder: the least server that answers every request of rk-bench
//! correctly, so that running the generator against it measures the generator alone.
//!
//! It keeps znodes in one map behind a mutex, answers in request order, one thread per
//! connection, and serves: connect, ping, create, delete, exists, getData, setData,
//! getChildren(2), multi of create/delete/setData/check, closeSession; getData watches are
//! fired on setData/delete. Stats carry consistent czxid/mzxid/version/dataLength. Anything
//! else is answered with Unimplemented. It is not a ZooKeeper: no ACLs, no persistence, no
//! session expiry, no validation of paths beyond what the generator sends.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ringkeeper::jute::frame::{FrameDecoder, DEFAULT_MAX_FRAME_BYTES};
use ringkeeper::jute::protocol::{xid, ErrorCode};
use ringkeeper::jute::records::{
    ConnectRequest, ConnectResponse, MultiHeader, ReplyHeader, Stat, WatcherEvent,
};
use ringkeeper::jute::{Reader, Record, Writer};

struct Node {
    data: Vec<u8>,
    stat: Stat,
}

type Outbox = Arc<Mutex<TcpStream>>;

#[derive(Default)]
struct Tree {
    /// Sorted so that the children of a node are a contiguous range.
    nodes: BTreeMap<String, Node>,
    zxid: i64,
    /// Data watches: path -> watchers' connections.
    watches: HashMap<String, Vec<Outbox>>,
}

/// Locks the tree; a poisoned lock (a panicked connection thread) still holds a usable map.
fn lock(tree: &Mutex<Tree>) -> MutexGuard<'_, Tree> {
    tree.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Responder {
    pub address: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Responder {
    /// Binds `address` (port 0 picks a free port) and serves in background threads until
    /// `stop` or the end of the process.
    pub fn start(address: SocketAddr) -> std::io::Result<Responder> {
        let listener = TcpListener::bind(address)?;
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let tree = Arc::new(Mutex::new(Tree::default()));
        let sessions = Arc::new(AtomicI64::new(0x100));
        let stop_flag = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_flag.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let tree = tree.clone();
                let session_id = sessions.fetch_add(1, Ordering::Relaxed);
                std::thread::spawn(move || {
                    // A connection error ends that connection only.
                    let _ = serve(stream, &tree, session_id);
                });
            }
        });
        Ok(Responder { address, stop })
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.address);
    }
}

fn stat_for_new(zxid: i64, data_length: usize, ephemeral_owner: i64) -> Stat {
    Stat {
        czxid: zxid,
        mzxid: zxid,
        ctime: 1,
        mtime: 1,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner,
        data_length: data_length as i32,
        num_children: 0,
        pzxid: zxid,
    }
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(index) => &path[..index],
    }
}

fn children_of<'a>(tree: &'a Tree, path: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let prefix = if path == "/" {
        "/".to_owned()
    } else {
        format!("{path}/")
    };
    let start = prefix.clone();
    tree.nodes
        .range(start..)
        .take_while(move |(key, _)| key.starts_with(&prefix))
        .filter_map(move |(key, _)| {
            let name = &key[key.rfind('/').map_or(0, |i| i + 1)..];
            (parent_of(key) == path).then_some(name)
        })
}

/// Outcome of one write op, applied under the lock.
enum Applied {
    Created(String),
    Set(Stat),
    Deleted,
    Checked,
}

fn apply(
    tree: &mut Tree,
    op: i32,
    reader: &mut Reader<'_>,
    session_id: i64,
    fired: &mut Vec<(Outbox, String)>,
) -> Result<Applied, i32> {
    let malformed = |_| ErrorCode::MarshallingError as i32;
    match op {
        1 | 15 => {
            let path = reader.read_string().map_err(malformed)?;
            let data = reader.read_buffer().map_err(malformed)?;
            let _acl = reader.read_vec(12, |r| {
                r.read_i32()?;
                r.read_string()?;
                r.read_string()
            });
            let flags = reader.read_i32().map_err(malformed)?;
            if tree.nodes.contains_key(&path) {
                return Err(ErrorCode::NodeExists as i32);
            }
            let parent = parent_of(&path).to_owned();
            if parent != "/" && !tree.nodes.contains_key(&parent) {
                return Err(ErrorCode::NoNode as i32);
            }
            tree.zxid += 1;
            let zxid = tree.zxid;
            let owner = if flags & 1 == 1 { session_id } else { 0 };
            if let Some(parent) = tree.nodes.get_mut(&parent) {
                parent.stat.cversion += 1;
                parent.stat.num_children += 1;
                parent.stat.pzxid = zxid;
            }
            let stat = stat_for_new(zxid, data.len(), owner);
            tree.nodes.insert(path.clone(), Node { data, stat });
            Ok(Applied::Created(path))
        }
        2 => {
            let path = reader.read_string().map_err(malformed)?;
            let _version = reader.read_i32().map_err(malformed)?;
            delete(tree, &path, fired)?;
            Ok(Applied::Deleted)
        }
        5 => {
            let path = reader.read_string().map_err(malformed)?;
            let data = reader.read_buffer().map_err(malformed)?;
            let _version = reader.read_i32().map_err(malformed)?;
            tree.zxid += 1;
            let zxid = tree.zxid;
            let node = tree.nodes.get_mut(&path).ok_or(ErrorCode::NoNode as i32)?;
            node.stat.version += 1;
            node.stat.mzxid = zxid;
            node.stat.mtime += 1;
            node.stat.data_length = data.len() as i32;
            node.data = data;
            let stat = node.stat.clone();
            if let Some(watchers) = tree.watches.remove(&path) {
                fired.extend(watchers.into_iter().map(|w| (w, path.clone())));
            }
            Ok(Applied::Set(stat))
        }
        13 => {
            let path = reader.read_string().map_err(malformed)?;
            let version = reader.read_i32().map_err(malformed)?;
            let node = tree.nodes.get(&path).ok_or(ErrorCode::NoNode as i32)?;
            if version != -1 && node.stat.version != version {
                return Err(ErrorCode::BadVersion as i32);
            }
            Ok(Applied::Checked)
        }
        _ => Err(ErrorCode::Unimplemented as i32),
    }
}

fn delete(tree: &mut Tree, path: &str, fired: &mut Vec<(Outbox, String)>) -> Result<(), i32> {
    if !tree.nodes.contains_key(path) {
        return Err(ErrorCode::NoNode as i32);
    }
    if children_of(tree, path).next().is_some() {
        return Err(ErrorCode::NotEmpty as i32);
    }
    tree.nodes.remove(path);
    tree.zxid += 1;
    let zxid = tree.zxid;
    if let Some(parent) = tree.nodes.get_mut(parent_of(path)) {
        parent.stat.cversion += 1;
        parent.stat.num_children -= 1;
        parent.stat.pzxid = zxid;
    }
    if let Some(watchers) = tree.watches.remove(path) {
        fired.extend(watchers.into_iter().map(|w| (w, path.to_owned())));
    }
    Ok(())
}

fn notify(fired: Vec<(Outbox, String)>, event_type: i32) {
    for (outbox, path) in fired {
        let mut writer = Writer::for_frame();
        ReplyHeader {
            xid: xid::NOTIFICATION,
            zxid: -1,
            err: 0,
        }
        .encode(&mut writer);
        WatcherEvent {
            event_type,
            state: 3,
            path,
        }
        .encode(&mut writer);
        let frame = writer.finish_frame();
        if let Ok(mut stream) = outbox.lock() {
            let _ = stream.write_all(&frame);
        }
    }
}

/// Answers one request frame into `out`; returns false after closeSession.
fn answer(
    frame: &[u8],
    tree: &Mutex<Tree>,
    session_id: i64,
    outbox: &Outbox,
    out: &mut Vec<u8>,
) -> bool {
    let mut reader = Reader::new(frame);
    let (Ok(request_xid), Ok(op)) = (reader.read_i32(), reader.read_i32()) else {
        return false;
    };
    let mut writer = Writer::for_frame();
    let mut body = Writer::new();
    let mut fired = Vec::new();
    let mut fired_type = 3;
    let mut keep_open = true;
    let (zxid, err) = {
        let mut guard = lock(tree);
        let tree = &mut *guard;
        let result: Result<(), i32> = match op {
            11 => Ok(()),
            4 => (|| {
                let path = reader.read_string().map_err(|_| -5)?;
                let watch = reader.read_bool().map_err(|_| -5)?;
                let node = tree.nodes.get(&path).ok_or(ErrorCode::NoNode as i32)?;
                body.write_buffer(&node.data);
                node.stat.encode(&mut body);
                if watch {
                    tree.watches.entry(path).or_default().push(outbox.clone());
                }
                Ok(())
            })(),
            3 => (|| {
                let path = reader.read_string().map_err(|_| -5)?;
                let node = tree.nodes.get(&path).ok_or(ErrorCode::NoNode as i32)?;
                node.stat.encode(&mut body);
                Ok(())
            })(),
            8 | 12 => (|| {
                let path = reader.read_string().map_err(|_| -5)?;
                let node = tree.nodes.get(&path).ok_or(ErrorCode::NoNode as i32)?;
                let stat = node.stat.clone();
                let children: Vec<String> = children_of(tree, &path).map(str::to_owned).collect();
                body.write_string_vec(&children);
                if op == 12 {
                    stat.encode(&mut body);
                }
                Ok(())
            })(),
            1 | 15 | 2 | 5 | 13 => match apply(tree, op, &mut reader, session_id, &mut fired) {
                Ok(Applied::Created(path)) => {
                    body.write_string(&path);
                    if op == 15 {
                        if let Some(node) = tree.nodes.get(&path) {
                            node.stat.encode(&mut body);
                        }
                    }
                    Ok(())
                }
                Ok(Applied::Set(stat)) => {
                    stat.encode(&mut body);
                    Ok(())
                }
                Ok(Applied::Deleted) => {
                    fired_type = 2;
                    Ok(())
                }
                Ok(Applied::Checked) => Ok(()),
                Err(code) => Err(code),
            },
            14 => multi(tree, &mut reader, session_id, &mut fired, &mut body),
            -11 => {
                let owned: Vec<String> = tree
                    .nodes
                    .iter()
                    .filter(|(_, node)| node.stat.ephemeral_owner == session_id)
                    .map(|(path, _)| path.clone())
                    .collect();
                for path in owned {
                    let _ = delete(tree, &path, &mut fired);
                }
                fired_type = 2;
                keep_open = false;
                Ok(())
            }
            _ => Err(ErrorCode::Unimplemented as i32),
        };
        (tree.zxid, result.err().unwrap_or(0))
    };
    notify(fired, fired_type);
    ReplyHeader {
        xid: request_xid,
        zxid,
        err,
    }
    .encode(&mut writer);
    if err == 0 {
        let body = body.into_bytes();
        let mut frame = writer.finish_frame();
        frame.extend_from_slice(&body);
        let length = (frame.len() - 4) as i32;
        frame[0..4].copy_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&frame);
    } else {
        out.extend_from_slice(&writer.finish_frame());
    }
    keep_open
}

/// A multi of writes, applied in order. Unlike ZooKeeper a multi that fails partway is not
/// rolled back (the generator never sends one that can fail); every result then reports the
/// error as ZooKeeper does (the failed op its code, the others RuntimeInconsistency).
fn multi(
    tree: &mut Tree,
    reader: &mut Reader<'_>,
    session_id: i64,
    fired: &mut Vec<(Outbox, String)>,
    body: &mut Writer,
) -> Result<(), i32> {
    let mut results = Vec::new();
    let mut failed = false;
    loop {
        let header = MultiHeader::decode(reader).map_err(|_| -5)?;
        if header.done {
            break;
        }
        let scratch = &mut Tree::default();
        let target = if failed { scratch } else { &mut *tree };
        let result = apply(target, header.op_type, reader, session_id, fired);
        failed |= result.is_err();
        results.push(result.map(|applied| (header.op_type, applied)));
    }
    for result in results {
        match result {
            Err(code) => {
                MultiHeader {
                    op_type: -1,
                    done: false,
                    err: code,
                }
                .encode(body);
                body.write_i32(code);
            }
            Ok(_) if failed => {
                let code = ErrorCode::RuntimeInconsistency as i32;
                MultiHeader {
                    op_type: -1,
                    done: false,
                    err: code,
                }
                .encode(body);
                body.write_i32(code);
            }
            Ok((op_type, applied)) => {
                MultiHeader {
                    op_type: if op_type == 15 { 1 } else { op_type },
                    done: false,
                    err: 0,
                }
                .encode(body);
                match applied {
                    Applied::Created(path) => body.write_string(&path),
                    Applied::Set(stat) => stat.encode(body),
                    Applied::Deleted | Applied::Checked => {}
                }
            }
        }
    }
    MultiHeader {
        op_type: -1,
        done: true,
        err: -1,
    }
    .encode(body);
    Ok(())
}

fn serve(stream: TcpStream, tree: &Mutex<Tree>, session_id: i64) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader_stream = stream.try_clone()?;
    let outbox: Outbox = Arc::new(Mutex::new(stream));
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
    let mut scratch = vec![0u8; 256 * 1024];
    let mut out = Vec::with_capacity(256 * 1024);
    let mut connected = false;
    loop {
        let count = reader_stream.read(&mut scratch)?;
        if count == 0 {
            break;
        }
        decoder.extend(&scratch[..count]);
        let mut keep_open = true;
        while let Ok(Some(frame)) = decoder.next_frame() {
            if !connected {
                let Ok(request) = ConnectRequest::from_bytes(frame) else {
                    return Ok(());
                };
                let mut writer = Writer::for_frame();
                ConnectResponse {
                    protocol_version: 0,
                    time_out: request.time_out.max(1),
                    session_id,
                    passwd: vec![0; 16],
                    read_only: false,
                }
                .encode(&mut writer);
                out.extend_from_slice(&writer.finish_frame());
                connected = true;
                continue;
            }
            if !answer(frame, tree, session_id, &outbox, &mut out) {
                keep_open = false;
                break;
            }
        }
        if !out.is_empty() {
            if let Ok(mut stream) = outbox.lock() {
                stream.write_all(&out)?;
            }
            out.clear();
        }
        if !keep_open {
            break;
        }
    }
    // Dropped connection: remove this session's ephemerals as an expiry would.
    let mut fired = Vec::new();
    {
        let mut guard = lock(tree);
        let owned: Vec<String> = guard
            .nodes
            .iter()
            .filter(|(_, node)| node.stat.ephemeral_owner == session_id)
            .map(|(path, _)| path.clone())
            .collect();
        for path in owned {
            let _ = delete(&mut guard, &path, &mut fired);
        }
        for watchers in guard.watches.values_mut() {
            watchers.retain(|w| !Arc::ptr_eq(w, &outbox));
        }
    }
    notify(fired, 2);
    Ok(())
}
