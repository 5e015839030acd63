//! The numeric vocabulary of the client protocol: opcodes (ZooDefs.OpCode), error codes
//! (KeeperException.Code), special xids (ClientCnxn), watch event types and states
//! (Watcher.Event), create modes (CreateMode), permissions (ZooDefs.Perms) and watch modes.

/// Request types, as `RequestHeader.type` carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum OpCode {
    Notification = 0,
    Create = 1,
    Delete = 2,
    Exists = 3,
    GetData = 4,
    SetData = 5,
    GetAcl = 6,
    SetAcl = 7,
    GetChildren = 8,
    Sync = 9,
    Ping = 11,
    GetChildren2 = 12,
    Check = 13,
    Multi = 14,
    Create2 = 15,
    Reconfig = 16,
    CheckWatches = 17,
    RemoveWatches = 18,
    CreateContainer = 19,
    DeleteContainer = 20,
    CreateTtl = 21,
    MultiRead = 22,
    Auth = 100,
    SetWatches = 101,
    Sasl = 102,
    GetEphemerals = 103,
    GetAllChildrenNumber = 104,
    SetWatches2 = 105,
    AddWatch = 106,
    WhoAmI = 107,
    CreateSession = -10,
    CloseSession = -11,
    Error = -1,
}

impl OpCode {
    /// Whether requests of this kind change the tree or the sessions (they carry a txn in
    /// ZooKeeper, whose FinalRequestProcessor counts them as `updatelatency`, the rest as
    /// `readlatency`).
    pub fn is_update(self) -> bool {
        use OpCode::*;
        matches!(
            self,
            Create
                | Delete
                | SetData
                | SetAcl
                | Check
                | Multi
                | Create2
                | Reconfig
                | CreateContainer
                | DeleteContainer
                | CreateTtl
                | CreateSession
                | CloseSession
        )
    }

    pub fn from_i32(value: i32) -> Option<OpCode> {
        use OpCode::*;
        Some(match value {
            0 => Notification,
            1 => Create,
            2 => Delete,
            3 => Exists,
            4 => GetData,
            5 => SetData,
            6 => GetAcl,
            7 => SetAcl,
            8 => GetChildren,
            9 => Sync,
            11 => Ping,
            12 => GetChildren2,
            13 => Check,
            14 => Multi,
            15 => Create2,
            16 => Reconfig,
            17 => CheckWatches,
            18 => RemoveWatches,
            19 => CreateContainer,
            20 => DeleteContainer,
            21 => CreateTtl,
            22 => MultiRead,
            100 => Auth,
            101 => SetWatches,
            102 => Sasl,
            103 => GetEphemerals,
            104 => GetAllChildrenNumber,
            105 => SetWatches2,
            106 => AddWatch,
            107 => WhoAmI,
            -10 => CreateSession,
            -11 => CloseSession,
            -1 => Error,
            _ => return None,
        })
    }

    /// The short name ZooKeeper prints in `cons` (Request.op2String).
    pub fn short_name(self) -> &'static str {
        use OpCode::*;
        match self {
            Notification => "notification",
            Create => "CREA",
            Delete => "DELE",
            Exists => "EXIS",
            GetData => "GETD",
            SetData => "SETD",
            GetAcl => "GETA",
            SetAcl => "SETA",
            GetChildren => "GETC",
            Sync => "SYNC",
            Ping => "PING",
            GetChildren2 => "GETC",
            Check => "CHEC",
            Multi => "MULT",
            Create2 => "CREA",
            Reconfig => "RECO",
            CheckWatches => "CHKW",
            RemoveWatches => "REMW",
            CreateContainer => "CREA",
            DeleteContainer => "DELE",
            CreateTtl => "CREA",
            MultiRead => "MLTR",
            Auth => "AUTH",
            SetWatches => "SETW",
            Sasl => "SASL",
            GetEphemerals => "GETE",
            GetAllChildrenNumber => "GETACN",
            SetWatches2 => "STW2",
            AddWatch => "ADDW",
            WhoAmI => "HOMI",
            CreateSession => "SESS",
            CloseSession => "CLOS",
            Error => "ERR",
        }
    }
}

/// KeeperException.Code values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    Ok = 0,
    SystemError = -1,
    RuntimeInconsistency = -2,
    DataInconsistency = -3,
    ConnectionLoss = -4,
    MarshallingError = -5,
    Unimplemented = -6,
    OperationTimeout = -7,
    BadArguments = -8,
    UnknownSession = -12,
    NewConfigNoQuorum = -13,
    ReconfigInProgress = -14,
    ApiError = -100,
    NoNode = -101,
    NoAuth = -102,
    BadVersion = -103,
    NoChildrenForEphemerals = -108,
    NodeExists = -110,
    NotEmpty = -111,
    SessionExpired = -112,
    InvalidCallback = -113,
    InvalidAcl = -114,
    AuthFailed = -115,
    SessionMoved = -118,
    NotReadOnly = -119,
    EphemeralOnLocalSession = -120,
    NoWatcher = -121,
    RequestTimeout = -122,
    ReconfigDisabled = -123,
    SessionClosedRequireSaslAuth = -124,
    QuotaExceeded = -125,
    ThrottledOp = -127,
}

impl ErrorCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The xids ZooKeeper reserves (ClientCnxn).
pub mod xid {
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// Watcher.Event.EventType.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum EventType {
    None = -1,
    NodeCreated = 1,
    NodeDeleted = 2,
    NodeDataChanged = 3,
    NodeChildrenChanged = 4,
    DataWatchRemoved = 5,
    ChildWatchRemoved = 6,
    PersistentWatchRemoved = 7,
}

/// Watcher.Event.KeeperState.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum KeeperState {
    Disconnected = 0,
    SyncConnected = 3,
    AuthFailed = 4,
    ConnectedReadOnly = 5,
    SaslAuthenticated = 6,
    Expired = -112,
    Closed = 7,
}

/// CreateMode flags as carried by CreateRequest.flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateMode {
    pub ephemeral: bool,
    pub sequential: bool,
    pub container: bool,
    pub ttl: bool,
}

impl CreateMode {
    pub const PERSISTENT: CreateMode = CreateMode {
        ephemeral: false,
        sequential: false,
        container: false,
        ttl: false,
    };

    pub fn from_flags(flags: i32) -> Option<CreateMode> {
        let base = CreateMode::PERSISTENT;
        Some(match flags {
            0 => base,
            1 => CreateMode {
                ephemeral: true,
                ..base
            },
            2 => CreateMode {
                sequential: true,
                ..base
            },
            3 => CreateMode {
                ephemeral: true,
                sequential: true,
                ..base
            },
            4 => CreateMode {
                container: true,
                ..base
            },
            5 => CreateMode { ttl: true, ..base },
            6 => CreateMode {
                ttl: true,
                sequential: true,
                ..base
            },
            _ => return None,
        })
    }
}

/// ZooDefs.Perms.
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

/// AddWatchMode.
pub mod add_watch_mode {
    pub const PERSISTENT: i32 = 0;
    pub const PERSISTENT_RECURSIVE: i32 = 1;
}

/// Watcher.WatcherType, as removeWatches and checkWatches carry it.
pub mod watcher_type {
    pub const CHILDREN: i32 = 1;
    pub const DATA: i32 = 2;
    pub const ANY: i32 = 3;
    pub const PERSISTENT: i32 = 4;
    pub const PERSISTENT_RECURSIVE: i32 = 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_opcode_round_trips() {
        for value in -20..200 {
            if let Some(op) = OpCode::from_i32(value) {
                assert_eq!(op as i32, value);
            }
        }
        assert_eq!(OpCode::from_i32(10), None, "10 is unused in ZooDefs.OpCode");
    }

    #[test]
    fn create_mode_flags_follow_create_mode_java() {
        assert!(CreateMode::from_flags(3).is_some_and(|m| m.ephemeral && m.sequential));
        assert!(CreateMode::from_flags(6).is_some_and(|m| m.ttl && m.sequential));
        assert_eq!(CreateMode::from_flags(7), None);
        assert_eq!(CreateMode::from_flags(-1), None);
    }
}
