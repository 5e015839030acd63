//! Golden frames of Apache ZooKeeper 3.8's server-to-server protocol, captured from a real
//! 3-server ensemble by `scripts/capture-zk-quorum.py` (which plays an observer by hand) into
//! `tests/golden/zkquorum/*.txt`: `O <hex>` frames the observer sent (and ZooKeeper took),
//! `Z <hex>` frames ZooKeeper sent, `R <hex>` the raw snapshot stream after SNAP; `#` lines
//! name the frame that follows. Every frame must decode exactly and re-encode to the captured
//! bytes, and the translator must turn the leader's side of each conversation into the ZAB
//! packets the core expects.

use std::path::PathBuf;

use ringkeeper::jute::codec::Reader;
use ringkeeper::jute::request::Request;
use ringkeeper::quorum::zookeeper::snapstream::read_snapshot_stream;
use ringkeeper::quorum::zookeeper::translate::{Effect, Translator};
use ringkeeper::quorum::zookeeper::txn::record_of;
use ringkeeper::quorum::zookeeper::wire::{
    kind, read_packet, InitialMessage, LearnerInfo, LearnerRequest, QuorumPacket, ZkNotification,
    PROTOCOL_VERSION_V1, STATE_FOLLOWING, STATE_LEADING,
};
use ringkeeper::quorum::{Forwarded, Wire};
use ringkeeper::zab::{Message, Packet};
use ringkeeper::zkformat::txn::{decode_entry, encode_entry};

struct Frame {
    direction: char,
    note: String,
    bytes: Vec<u8>,
}

fn load(name: &str) -> Vec<Frame> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/zkquorum")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut note = String::new();
    let mut frames = Vec::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            note = comment.to_string();
            continue;
        }
        let (direction, hex) = line.split_at(1);
        let hex = hex.trim();
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        frames.push(Frame {
            direction: direction.chars().next().unwrap(),
            note: note.clone(),
            bytes,
        });
    }
    assert!(frames.len() > 5, "{name}: only {} frames", frames.len());
    frames
}

#[test]
fn election_handshakes_and_notifications_decode_and_reencode_exactly() {
    let frames = load("election.txt");
    let mut handshakes = 0;
    let mut answers = Vec::new();
    for frame in &frames {
        if frame.note.contains("handshake") {
            let (message, used) = InitialMessage::decode(&frame.bytes).unwrap().unwrap();
            assert_eq!(used, frame.bytes.len());
            assert_eq!(message.protocol_version, PROTOCOL_VERSION_V1);
            assert_eq!(message.sid, 4);
            assert_eq!(message.encode(), frame.bytes);
            handshakes += 1;
        } else {
            let notification = ZkNotification::decode(&frame.bytes).unwrap();
            assert_eq!(notification.encode(), frame.bytes, "{}", frame.note);
            assert!(notification.to_zab().is_some());
            if frame.direction == 'Z' {
                answers.push(notification);
            }
        }
    }
    assert_eq!(handshakes, 3);
    assert_eq!(answers.len(), 3);
    // The participants answer a LOOKING observer at once with their settled vote: two
    // FOLLOWING and the leader LEADING, all with the same (leader, zxid, peerEpoch), which is
    // what ZAB's observer needs to join (a quorum agreeing and the leader saying LEADING).
    let leader = answers[0].leader;
    assert!(answers
        .iter()
        .all(|a| (a.leader, a.zxid, a.peer_epoch)
            == (leader, answers[0].zxid, answers[0].peer_epoch)));
    assert_eq!(
        answers.iter().filter(|a| a.state == STATE_LEADING).count(),
        1
    );
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.state == STATE_FOLLOWING)
            .count(),
        2
    );
    for answer in &answers {
        assert_eq!(answer.version, 2);
        let text = String::from_utf8(answer.config.clone()).unwrap();
        assert!(text.ends_with("\nversion=0"), "{text}");
        assert!(text.contains(":observer;"), "{text}");
    }
}

fn check_quorum_frames(name: &str) -> usize {
    let mut checked = 0;
    for frame in load(name) {
        if frame.direction == 'R' {
            let tree = read_snapshot_stream(&mut &frame.bytes[..], 0x1_0000_0009).unwrap();
            assert!(tree.get("/golden").is_some());
            assert!(tree.get("/zookeeper/config").is_some());
            checked += 1;
            continue;
        }
        let (packet, used) = QuorumPacket::decode(&frame.bytes).unwrap().unwrap();
        assert_eq!(used, frame.bytes.len(), "{}", frame.note);
        assert_eq!(packet.encode(), frame.bytes, "{}", frame.note);
        assert_eq!(read_packet(&mut &frame.bytes[..]).unwrap(), packet);
        let data = packet.data.clone().unwrap_or_default();
        match packet.kind {
            kind::OBSERVERINFO => {
                let info = LearnerInfo::decode(&data).unwrap();
                assert_eq!(
                    (info.sid, info.protocol_version, info.config_version),
                    (4, 0x10000, 0)
                );
                assert_eq!(info.encode(), data);
            }
            kind::LEADERINFO => assert_eq!(data, 0x10000i32.to_be_bytes()),
            kind::PROPOSAL | kind::INFORM => {
                // The txn bytes exactly as ZooKeeper writes them, digest included.
                let entry = decode_entry(&data).unwrap();
                assert_eq!(entry.header.zxid, packet.zxid);
                assert!(
                    entry.digest.is_some(),
                    "3.8 sends the digest: {}",
                    frame.note
                );
                assert_eq!(encode_entry(&entry), data, "{}", frame.note);
                record_of(&data).unwrap();
            }
            kind::REQUEST => {
                let request = LearnerRequest::decode(&data).unwrap();
                assert_eq!(request.encode(), data);
                if request.op > 0 {
                    Request::decode(request.op, &mut Reader::new(&request.body)).unwrap();
                }
                // The create carries the client's auth ids (ZooKeeper's leader checks ACLs
                // with them); the session txns carry none.
                if request.op == 1 {
                    assert_eq!(packet.auth.as_ref().map(Vec::len), Some(1));
                }
            }
            _ => {}
        }
        checked += 1;
    }
    checked
}

#[test]
fn every_quorum_frame_of_a_diff_and_a_snap_sync_decodes_and_reencodes_exactly() {
    assert!(check_quorum_frames("observer-diff.txt") > 20);
    assert!(check_quorum_frames("observer-snap.txt") > 15);
}

/// Replays the leader's side of a conversation through the translator, with the observer's
/// forwarded requests, and returns the ZAB packets and other messages it delivered.
fn replay(name: &str, learner_zxid: i64) -> (Vec<Packet>, Vec<Wire>) {
    let mut translator = Translator::new(4, true, b"version=0".to_vec(), 0, 30_000);
    let mut out = Vec::new();
    let conn = 1;
    let info = Wire::Zab(Message::Link {
        conn,
        seq: 0,
        packet: Packet::FollowerInfo {
            accepted_epoch: 0,
            observer: true,
        },
    });
    assert!(translator.outbound(3, &info, &mut out));
    let mut packets = Vec::new();
    let mut others = Vec::new();
    let session = 0x0400_0000_0000_1234i64;
    for frame in load(name) {
        if frame.direction != 'Z' {
            continue;
        }
        let (packet, _) = QuorumPacket::decode(&frame.bytes).unwrap().unwrap();
        let snapshot = (packet.kind == kind::SNAP).then(Vec::new);
        out.clear();
        translator.inbound(conn, packet.clone(), snapshot, &mut out);
        for effect in &out {
            match effect {
                Effect::Deliver(3, Wire::Zab(Message::Link { packet, .. })) => {
                    packets.push(packet.clone())
                }
                Effect::Deliver(3, wire) => others.push(wire.clone()),
                Effect::Send { .. } => {}
                other => panic!("{}: unexpected {other:?}", frame.note),
            }
        }
        // What the observer did at this point of the capture.
        let mut reply = |wire: Wire| {
            let mut sent = Vec::new();
            assert!(translator.outbound(3, &wire, &mut sent), "{wire:?}");
        };
        match packet.kind {
            kind::LEADERINFO => reply(Wire::Zab(Message::Link {
                conn,
                seq: 1,
                packet: Packet::AckEpoch {
                    current_epoch: 0,
                    last_zxid: learner_zxid,
                },
            })),
            kind::UPTODATE => {
                reply(Wire::Forward {
                    id: 10,
                    request: Forwarded::CreateSession {
                        session_id: session,
                        timeout_ms: 10_000,
                    },
                });
                reply(Wire::Forward {
                    id: 11,
                    request: Forwarded::Request {
                        session_id: session,
                        xid: 1,
                        request: Request::Ping,
                        auth: Vec::new(),
                    },
                });
            }
            kind::PING if !others.iter().any(|w| matches!(w, Wire::Synced { .. })) => {
                reply(Wire::Forward {
                    id: 12,
                    request: Forwarded::Request {
                        session_id: session,
                        xid: 2,
                        request: Request::Sync(ringkeeper::jute::records::SyncRequest {
                            path: "/golden".into(),
                        }),
                        auth: Vec::new(),
                    },
                });
                reply(Wire::Forward {
                    id: 13,
                    request: Forwarded::Revalidate {
                        session_id: session,
                        timeout_ms: 10_000,
                    },
                });
            }
            _ => {}
        }
    }
    (packets, others)
}

#[test]
fn a_captured_diff_sync_becomes_the_zab_packets_the_core_expects() {
    let (packets, others) = replay("observer-diff.txt", 0x1_0000_0002);
    let kinds: Vec<String> = packets
        .iter()
        .map(|p| {
            format!("{p:?}")
                .split([' ', '('])
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        &kinds[..9],
        &[
            "LeaderInfo",
            "Diff",
            "Proposal",
            "Proposal",
            "Proposal",
            "NewLeader",
            "Commit",
            "UpToDate",
            "Inform"
        ],
        "{kinds:?}"
    );
    assert_eq!(
        packets[1],
        Packet::Diff {
            zxid: 0x1_0000_0002
        }
    );
    assert_eq!(
        packets[5],
        Packet::NewLeader {
            epoch: 1,
            zxid: 0x1_0000_0005
        }
    );
    assert_eq!(
        packets[7],
        Packet::UpToDate {
            zxid: 0x1_0000_0005
        }
    );
    // The createSession and the create forwarded by the observer are matched to their
    // INFORMs by session and cxid; the sync and the revalidation are answered.
    assert!(others.contains(&Wire::Proposed {
        id: 10,
        zxid: 0x1_0000_0007
    }));
    assert!(others.contains(&Wire::Proposed {
        id: 11,
        zxid: 0x1_0000_0008
    }));
    assert!(others
        .iter()
        .any(|w| matches!(w, Wire::Synced { id: 12, .. })));
    assert!(others.contains(&Wire::Revalidated {
        id: 13,
        valid: true,
        timeout_ms: 10_000
    }));
}

#[test]
fn a_captured_snap_sync_becomes_snap_newleader_uptodate() {
    let (packets, _) = replay("observer-snap.txt", 0);
    assert!(matches!(
        packets[1],
        Packet::Snap {
            zxid: 0x1_0000_0009,
            ..
        }
    ));
    assert_eq!(
        packets[2],
        Packet::NewLeader {
            epoch: 1,
            zxid: 0x1_0000_0009
        }
    );
    assert_eq!(
        packets[4],
        Packet::UpToDate {
            zxid: 0x1_0000_0009
        }
    );
}
