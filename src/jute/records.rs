//! The client-protocol records of ZooKeeper's `zookeeper.jute` (modules
//! `org.apache.zookeeper.data` and `org.apache.zookeeper.proto`), field for field and in the
//! same order, since the wire format is nothing but the fields concatenated.
//!
//! Type mapping: `int` → i32, `long` → i64, `boolean` → bool, `ustring` → String (null reads as
//! empty), `buffer` → Vec<u8> (null reads as empty) except node data, which ZooKeeper keeps
//! null-distinct and is `Option<Vec<u8>>`, `vector<T>` → Vec<T>.

use super::codec::{JuteError, Reader, Record, Writer};

/// One field of a record.
pub trait Field: Sized {
    fn put(&self, writer: &mut Writer);
    fn get(reader: &mut Reader<'_>) -> Result<Self, JuteError>;
}

impl Field for i32 {
    fn put(&self, writer: &mut Writer) {
        writer.write_i32(*self)
    }
    fn get(reader: &mut Reader<'_>) -> Result<Self, JuteError> {
        reader.read_i32()
    }
}

impl Field for i64 {
    fn put(&self, writer: &mut Writer) {
        writer.write_i64(*self)
    }
    fn get(reader: &mut Reader<'_>) -> Result<Self, JuteError> {
        reader.read_i64()
    }
}

impl Field for bool {
    fn put(&self, writer: &mut Writer) {
        writer.write_bool(*self)
    }
    fn get(reader: &mut Reader<'_>) -> Result<Self, JuteError> {
        reader.read_bool()
    }
}

impl Field for String {
    fn put(&self, writer: &mut Writer) {
        writer.write_string(self)
    }
    fn get(reader: &mut Reader<'_>) -> Result<Self, JuteError> {
        reader.read_string()
    }
}

impl Field for Vec<u8> {
    fn put(&self, writer: &mut Writer) {
        writer.write_buffer(self)
    }
    fn get(reader: &mut Reader<'_>) -> Result<Self, JuteError> {
        reader.read_buffer()
    }
}

impl Field for Option<Vec<u8>> {
    fn put(&self, writer: &mut Writer) {
        writer.write_optional_buffer(self.as_deref())
    }
    fn get(reader: &mut Reader<'_>) -> Result<Self, JuteError> {
        reader.read_optional_buffer()
    }
}

impl Field for Vec<String> {
    fn put(&self, writer: &mut Writer) {
        writer.write_string_vec(self)
    }
    fn get(reader: &mut Reader<'_>) -> Result<Self, JuteError> {
        reader.read_string_vec()
    }
}

/// Vectors of nested records; the minimum encoded size bounds the pre-allocation.
macro_rules! record_vec_field {
    ($element:ty, $min_bytes:expr) => {
        impl Field for Vec<$element> {
            fn put(&self, writer: &mut Writer) {
                writer.write_vec(self, |writer, item| item.encode(writer));
            }
            fn get(reader: &mut Reader<'_>) -> Result<Self, JuteError> {
                reader.read_vec($min_bytes, |reader| <$element>::decode(reader))
            }
        }
    };
}

macro_rules! record {
    ($(#[$meta:meta])* $name:ident { $($field:ident : $type:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $(pub $field: $type),*
        }

        impl Record for $name {
            #[allow(unused_variables)]
            fn encode(&self, writer: &mut Writer) {
                $(Field::put(&self.$field, writer);)*
            }
            #[allow(unused_variables)]
            fn decode(reader: &mut Reader<'_>) -> Result<Self, JuteError> {
                Ok($name { $($field: Field::get(reader)?),* })
            }
        }

        impl Field for $name {
            fn put(&self, writer: &mut Writer) {
                self.encode(writer)
            }
            fn get(reader: &mut Reader<'_>) -> Result<Self, JuteError> {
                Self::decode(reader)
            }
        }
    };
}

// ---- org.apache.zookeeper.data ----

record!(Id {
    scheme: String,
    id: String
});
record!(Acl { perms: i32, id: Id });
record!(
    /// The metadata of a znode as clients see it.
    Stat {
        czxid: i64,
        mzxid: i64,
        ctime: i64,
        mtime: i64,
        version: i32,
        cversion: i32,
        aversion: i32,
        ephemeral_owner: i64,
        data_length: i32,
        num_children: i32,
        pzxid: i64,
    }
);
record!(ClientInfo {
    auth_scheme: String,
    user: String
});

record_vec_field!(Acl, 12);
record_vec_field!(ClientInfo, 8);

// ---- org.apache.zookeeper.proto ----

record!(ConnectRequest {
    protocol_version: i32,
    last_zxid_seen: i64,
    time_out: i32,
    session_id: i64,
    passwd: Vec<u8>,
    read_only: bool,
});
record!(ConnectResponse {
    protocol_version: i32,
    time_out: i32,
    session_id: i64,
    passwd: Vec<u8>,
    read_only: bool,
});
record!(SetWatches {
    relative_zxid: i64,
    data_watches: Vec<String>,
    exist_watches: Vec<String>,
    child_watches: Vec<String>,
});
record!(SetWatches2 {
    relative_zxid: i64,
    data_watches: Vec<String>,
    exist_watches: Vec<String>,
    child_watches: Vec<String>,
    persistent_watches: Vec<String>,
    persistent_recursive_watches: Vec<String>,
});
record!(RequestHeader {
    xid: i32,
    op_type: i32
});
record!(MultiHeader {
    op_type: i32,
    done: bool,
    err: i32
});
record!(AuthPacket {
    auth_type: i32,
    scheme: String,
    auth: Vec<u8>
});
record!(ReplyHeader {
    xid: i32,
    zxid: i64,
    err: i32
});
record!(GetDataRequest {
    path: String,
    watch: bool
});
record!(SetDataRequest {
    path: String,
    data: Option<Vec<u8>>,
    version: i32,
});
record!(ReconfigRequest {
    joining_servers: String,
    leaving_servers: String,
    new_members: String,
    cur_config_id: i64,
});
record!(SetDataResponse { stat: Stat });
record!(GetSaslRequest { token: Vec<u8> });
record!(SetSaslRequest { token: Vec<u8> });
// The server's token is null (-1) when a mechanism completes without one, and when no SASL
// server is configured (ZooKeeperServer.processSasl).
record!(SetSaslResponse { token: Option<Vec<u8>> });
record!(CreateRequest {
    path: String,
    data: Option<Vec<u8>>,
    acl: Vec<Acl>,
    flags: i32,
});
record!(CreateTtlRequest {
    path: String,
    data: Option<Vec<u8>>,
    acl: Vec<Acl>,
    flags: i32,
    ttl: i64,
});
record!(DeleteRequest {
    path: String,
    version: i32
});
record!(GetChildrenRequest {
    path: String,
    watch: bool
});
record!(GetAllChildrenNumberRequest { path: String });
record!(GetChildren2Request {
    path: String,
    watch: bool
});
record!(CheckVersionRequest {
    path: String,
    version: i32
});
record!(SyncRequest { path: String });
record!(SyncResponse { path: String });
record!(GetAclRequest { path: String });
record!(SetAclRequest {
    path: String,
    acl: Vec<Acl>,
    version: i32,
});
record!(SetAclResponse { stat: Stat });
record!(AddWatchRequest {
    path: String,
    mode: i32
});
record!(WatcherEvent {
    event_type: i32,
    state: i32,
    path: String
});
record!(ErrorResponse { err: i32 });
record!(CreateResponse { path: String });
record!(Create2Response {
    path: String,
    stat: Stat
});
record!(ExistsRequest {
    path: String,
    watch: bool
});
record!(ExistsResponse { stat: Stat });
record!(GetDataResponse {
    data: Option<Vec<u8>>,
    stat: Stat
});
record!(GetChildrenResponse {
    children: Vec<String>
});
record!(GetAllChildrenNumberResponse { total_number: i32 });
record!(GetChildren2Response {
    children: Vec<String>,
    stat: Stat
});
record!(GetAclResponse {
    acl: Vec<Acl>,
    stat: Stat
});
record!(CheckWatchesRequest {
    path: String,
    watcher_type: i32
});
record!(RemoveWatchesRequest {
    path: String,
    watcher_type: i32
});
record!(GetEphemeralsRequest {
    prefix_path: String
});
record!(GetEphemeralsResponse {
    ephemerals: Vec<String>
});
record!(WhoAmIResponse {
    client_info: Vec<ClientInfo>
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_68_bytes_in_declaration_order() {
        let stat = Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        };
        let bytes = stat.to_bytes();
        assert_eq!(bytes.len(), 68);
        assert_eq!(&bytes[0..8], &1i64.to_be_bytes());
        assert_eq!(&bytes[32..36], &5i32.to_be_bytes());
        assert_eq!(&bytes[60..68], &11i64.to_be_bytes());
        assert_eq!(Stat::from_bytes(&bytes), Ok(stat));
    }

    #[test]
    fn create_request_round_trips_with_null_data() {
        let request = CreateRequest {
            path: "/a".into(),
            data: None,
            acl: vec![Acl {
                perms: 31,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            flags: 3,
        };
        let bytes = request.to_bytes();
        assert_eq!(CreateRequest::from_bytes(&bytes), Ok(request));
    }

    #[test]
    fn connect_request_without_read_only_flag_is_truncated() {
        // Clients older than 3.4 omit the readOnly byte; the frame layer handles that case
        // explicitly (see net), the record itself requires it.
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 30000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: false,
        };
        let bytes = request.to_bytes();
        assert!(ConnectRequest::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }
}
