//! [pure] Client-side frames built from the library's jute records, and the parts of replies
//! that the library does not decode as one record (the connect response of old servers, multi
//! results).

use ringkeeper::jute::protocol::{perms, OpCode};
use ringkeeper::jute::records::{ConnectRequest, ConnectResponse, MultiHeader, ReplyHeader, Stat};
use ringkeeper::jute::{JuteError, Reader, Record, Writer};

/// Largest reply frame accepted: above ZooKeeper's default jute.maxbuffer so that a large
/// getChildren still decodes, bounded so a garbage length cannot exhaust memory.
pub const REPLY_FRAME_BYTES_MAX: usize = 16 << 20;

/// Appends one length-prefixed request frame to `out`.
pub fn push_request(out: &mut Vec<u8>, xid: i32, op: OpCode, body: impl FnOnce(&mut Writer)) {
    let mut writer = Writer::for_frame();
    writer.write_i32(xid);
    writer.write_i32(op as i32);
    body(&mut writer);
    out.extend_from_slice(&writer.finish_frame());
}

/// The first frame of a session: a new session (id 0, zero password) with `timeout_ms`.
pub fn push_connect(out: &mut Vec<u8>, timeout_ms: i32) {
    let mut writer = Writer::for_frame();
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: timeout_ms,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: false,
    }
    .encode(&mut writer);
    out.extend_from_slice(&writer.finish_frame());
}

/// ConnectResponse; servers before 3.4 omit the trailing readOnly byte, so it is optional.
pub fn parse_connect_response(frame: &[u8]) -> Result<ConnectResponse, JuteError> {
    let mut reader = Reader::new(frame);
    let protocol_version = reader.read_i32()?;
    let time_out = reader.read_i32()?;
    let session_id = reader.read_i64()?;
    let passwd = reader.read_buffer()?;
    let read_only = if reader.remaining() > 0 {
        reader.read_bool()?
    } else {
        false
    };
    reader.finish()?;
    Ok(ConnectResponse {
        protocol_version,
        time_out,
        session_id,
        passwd,
        read_only,
    })
}

pub fn write_create(writer: &mut Writer, path: &str, data: &[u8], flags: i32) {
    writer.write_string(path);
    writer.write_buffer(data);
    writer.write_i32(1);
    writer.write_i32(perms::ALL);
    writer.write_string("world");
    writer.write_string("anyone");
    writer.write_i32(flags);
}

pub fn write_set(writer: &mut Writer, path: &str, data: &[u8]) {
    writer.write_string(path);
    writer.write_buffer(data);
    writer.write_i32(-1);
}

pub fn write_multi_header(writer: &mut Writer, op_type: i32, done: bool) {
    MultiHeader {
        op_type,
        done,
        err: -1,
    }
    .encode(writer);
}

pub fn parse_reply_header(reader: &mut Reader<'_>) -> Result<ReplyHeader, JuteError> {
    ReplyHeader::decode(reader)
}

/// One result of a multi (MultiResponse): the op's type with its body, or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    SetData(Stat),
    Create(String),
    Delete,
    Check,
    Error(i32),
}

/// MultiResponse: (MultiHeader, body)* up to a header with done = true.
pub fn parse_multi_response(
    reader: &mut Reader<'_>,
    results_max: usize,
) -> Result<Vec<MultiResult>, JuteError> {
    let mut results = Vec::new();
    loop {
        let header = MultiHeader::decode(reader)?;
        if header.done {
            return Ok(results);
        }
        if results.len() >= results_max {
            return Err(JuteError::InvalidValue {
                field: "MultiResponse length",
                value: results.len() as i64 + 1,
            });
        }
        let result = match header.op_type {
            5 => MultiResult::SetData(Stat::decode(reader)?),
            1 => MultiResult::Create(reader.read_string()?),
            2 => MultiResult::Delete,
            13 => MultiResult::Check,
            -1 => MultiResult::Error(reader.read_i32()?),
            other => {
                return Err(JuteError::InvalidValue {
                    field: "MultiHeader.type",
                    value: other as i64,
                })
            }
        };
        results.push(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_frame_is_length_header_body() {
        let mut out = Vec::new();
        push_request(&mut out, 7, OpCode::GetData, |w| {
            w.write_string("/a");
            w.write_bool(false);
        });
        assert_eq!(
            out,
            vec![0, 0, 0, 15, 0, 0, 0, 7, 0, 0, 0, 4, 0, 0, 0, 2, b'/', b'a', 0]
        );
    }

    #[test]
    fn connect_response_with_and_without_read_only_byte() {
        let response = ConnectResponse {
            protocol_version: 0,
            time_out: 30000,
            session_id: 42,
            passwd: vec![1; 16],
            read_only: false,
        };
        let bytes = response.to_bytes();
        assert_eq!(parse_connect_response(&bytes), Ok(response.clone()));
        assert_eq!(
            parse_connect_response(&bytes[..bytes.len() - 1]),
            Ok(response)
        );
        assert!(parse_connect_response(&bytes[..10]).is_err());
    }

    #[test]
    fn multi_response_parses_results_and_errors() {
        let mut writer = Writer::new();
        MultiHeader {
            op_type: 5,
            done: false,
            err: 0,
        }
        .encode(&mut writer);
        Stat::default().encode(&mut writer);
        MultiHeader {
            op_type: -1,
            done: false,
            err: -101,
        }
        .encode(&mut writer);
        writer.write_i32(-101);
        MultiHeader {
            op_type: -1,
            done: true,
            err: -1,
        }
        .encode(&mut writer);
        let bytes = writer.into_bytes();
        let mut reader = Reader::new(&bytes);
        assert_eq!(
            parse_multi_response(&mut reader, 10),
            Ok(vec![
                MultiResult::SetData(Stat::default()),
                MultiResult::Error(-101)
            ])
        );
        assert!(parse_multi_response(&mut Reader::new(&bytes), 1).is_err());
    }
}
