//! [io] The client port's sockets, driven by readiness (one epoll instance per core) instead of
//! io_uring requests, so that they close with the process when it is killed.
//!
//! Why: an io_uring request in flight on a socket holds a reference to the socket's file.
//! glommio keeps one on every socket it serves: an `IORING_OP_ACCEPT` on the listener
//! (`TcpListener::accept` tries a non-blocking accept4, then submits the ring's accept and
//! waits) and an `IORING_OP_POLL_ADD` on each connection (its `poll_read` arms one whenever a
//! recv would block). When the process is killed (SIGKILL) the kernel closes its descriptors
//! as it exits, but a socket stays open until the last reference goes, and the ring's
//! references go only when the ring is torn down: after the last descriptor of the ring is
//! closed, asynchronously (`io_ring_exit_work` on a workqueue cancels the requests, and their
//! files are put through the delayed fput work). Measured with `scripts/sigkill-linger.py`:
//! 5-20 ms after the process has been reaped, the dead server's listener still completed
//! handshakes (hundreds of connects succeeded, and nobody ever reads them) and its clients'
//! connections were still open. A client that reconnects or sends a request in that window
//! loses it (go-zookeeper: `zk: connection closed`); Apache ZooKeeper's sockets (NIO, epoll)
//! close as its process exits, and so do these.
//!
//! How: each core owns a [`Readiness`]: an epoll instance in which its listener and its
//! connections are registered, edge-triggered, once. epoll holds no reference to the files it
//! watches (the last close of a file removes it), so the sockets' only references are the
//! descriptors. The only io_uring request in flight is a poll on the epoll descriptor itself
//! (the driver, [`drive`]): when the epoll instance has events, [`drive`] collects them with a
//! non-blocking `epoll_wait` and wakes the tasks that wait on those sockets; they then accept,
//! recv and send with non-blocking system calls, as glommio's own "try the syscall first"
//! path does. The listener keeps glommio's options (SO_REUSEPORT on every core's listener,
//! backlog 1024), so the kernel still spreads connections over the cores and each core owns
//! the connections it accepted.
//!
//! glommio 0.9 has no public "wait until this descriptor is readable". Its `TcpStream` built
//! from a descriptor arms exactly that (a POLL_ADD for POLLIN) when it is created, and its
//! first read waits for it; on a descriptor that is not a socket that read then fails with
//! ENOTSOCK. [`epoll_readable`] builds one on a duplicate of the epoll descriptor and takes
//! the read's completion, whatever its result, as "the epoll instance has events" (a spurious
//! completion only costs one empty `epoll_wait`). The test
//! `the_epoll_probe_waits_until_an_event_arrives` pins that behaviour, so a glommio upgrade
//! that changes it fails there and not in production.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, FromRawFd, IntoRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use rustix::event::epoll;
use tracing::{error, warn};

/// Listen backlog, as glommio's `TcpListener::bind` (and ZooKeeper's NIOServerCnxnFactory's
/// default of the OS's somaxconn-bounded backlog) use.
const LISTEN_BACKLOG: i32 = 1024;
/// Events taken from the epoll instance per `epoll_wait`; more are taken in the next round.
const EVENTS_PER_WAIT_MAX: usize = 256;
/// Consecutive wakeups of the driver with no event at all after which it says so and slows
/// down: the probe's poll no longer waits (a changed glommio); the server stays correct, only
/// slower, instead of spinning a core.
const EMPTY_WAKEUPS_MAX: u32 = 10_000;

/// What a registered socket is ready for, and who waits for it.
#[derive(Default)]
struct Slot {
    readable: Cell<bool>,
    writable: Cell<bool>,
    reader: Cell<Option<Waker>>,
    writer: Cell<Option<Waker>>,
}

impl Slot {
    fn ready() -> Slot {
        // Optimistic: a new socket is tried first (a connection may have data already, and
        // the edge of its arrival may predate the registration); EAGAIN clears the flag.
        Slot {
            readable: Cell::new(true),
            writable: Cell::new(true),
            ..Slot::default()
        }
    }
}

/// One core's epoll instance and the sockets registered in it. Single-threaded (the core's
/// tasks): events are applied only by [`drive`], between the tasks' polls, so a task that saw
/// EAGAIN and stored its waker cannot miss the edge that follows.
pub struct Readiness {
    epoll: OwnedFd,
    slots: RefCell<HashMap<u64, Rc<Slot>>>,
    next_token: Cell<u64>,
}

impl Readiness {
    pub fn new() -> io::Result<Rc<Readiness>> {
        Ok(Rc::new(Readiness {
            epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
            slots: RefCell::new(HashMap::new()),
            next_token: Cell::new(0),
        }))
    }

    /// Registers `socket` (made non-blocking) for reading and writing, edge-triggered.
    fn register(self: &Rc<Readiness>, socket: socket2::Socket) -> io::Result<Registered> {
        socket.set_nonblocking(true)?;
        let token = self.next_token.get();
        // Tokens are never reused: an event still queued for a closed socket finds no slot.
        self.next_token.set(token + 1);
        let slot = Rc::new(Slot::ready());
        epoll::add(
            &self.epoll,
            &socket,
            epoll::EventData::new_u64(token),
            epoll::EventFlags::IN
                | epoll::EventFlags::OUT
                | epoll::EventFlags::RDHUP
                | epoll::EventFlags::ET,
        )?;
        self.slots.borrow_mut().insert(token, slot.clone());
        Ok(Registered {
            socket,
            slot,
            token,
            readiness: self.clone(),
        })
    }

    /// Takes the events that are there without waiting, wakes their sockets' tasks, and
    /// returns how many there were.
    fn dispatch(&self, events: &mut [epoll::Event]) -> io::Result<usize> {
        let count = match epoll::wait(&self.epoll, &mut *events, Some(&ZERO_TIMEOUT)) {
            Ok(count) => count,
            Err(rustix::io::Errno::INTR) => return Ok(0),
            Err(error) => return Err(error.into()),
        };
        let slots = self.slots.borrow();
        for event in events.iter().take(count) {
            let Some(slot) = slots.get(&event.data.u64()) else {
                continue;
            };
            let flags = event.flags;
            let failed = flags.intersects(epoll::EventFlags::HUP | epoll::EventFlags::ERR);
            if failed || flags.intersects(epoll::EventFlags::IN | epoll::EventFlags::RDHUP) {
                slot.readable.set(true);
                if let Some(waker) = slot.reader.take() {
                    waker.wake();
                }
            }
            if failed || flags.contains(epoll::EventFlags::OUT) {
                slot.writable.set(true);
                if let Some(waker) = slot.writer.take() {
                    waker.wake();
                }
            }
        }
        Ok(count)
    }
}

const ZERO_TIMEOUT: rustix::event::Timespec = rustix::event::Timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// Runs one core's readiness loop for as long as the core runs: takes the epoll instance's
/// events and wakes their tasks, and when there are none, waits for the next through the
/// core's ring (one poll request, on the epoll descriptor).
pub async fn drive(readiness: Rc<Readiness>) {
    let blank = epoll::Event {
        flags: epoll::EventFlags::empty(),
        data: epoll::EventData::new_u64(u64::MAX),
    };
    let mut events = vec![blank; EVENTS_PER_WAIT_MAX];
    let mut empty_wakeups = 0u32;
    loop {
        match readiness.dispatch(&mut events) {
            Ok(0) => empty_wakeups += 1,
            Ok(count) => {
                empty_wakeups = 0;
                // The woken tasks run before the next look, in the order they were woken.
                futures_lite::future::yield_now().await;
                if count == EVENTS_PER_WAIT_MAX {
                    continue; // more may be waiting: look again at once
                }
                // Otherwise straight to the probe, without an epoll_wait that would find
                // nothing most of the time (a request answered at once leaves no event): if
                // events arrived meanwhile, the probe's poll completes as soon as it is armed.
            }
            Err(error) => {
                // Only a broken epoll descriptor fails here (EBADF, EINVAL): this core could
                // no longer serve a client, so the server stops loudly rather than half-serve.
                error!("epoll_wait on the client port's epoll instance failed: {error}");
                std::process::exit(1);
            }
        }
        if empty_wakeups >= EMPTY_WAKEUPS_MAX {
            warn!(
                "the client port's readiness probe returned {EMPTY_WAKEUPS_MAX} times without \
                 an event; polling every millisecond instead"
            );
            empty_wakeups = 0;
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            continue;
        }
        if let Err(error) = epoll_readable(&readiness.epoll).await {
            warn!("cannot wait for the client port's epoll instance: {error}; retrying");
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
}

/// Waits until `epoll` has an event (or spuriously), with a glommio poll request on a
/// duplicate of its descriptor (see the module documentation for why this form).
async fn epoll_readable(epoll: &OwnedFd) -> io::Result<()> {
    let duplicate = epoll.try_clone()?.into_raw_fd();
    // SAFETY: `duplicate` is a descriptor this function has just created and owns; the probe
    // takes it over and closes it when dropped, and nothing else uses or closes it. (glommio's
    // socket2 0.4 has no safe conversion from an OwnedFd.)
    let mut probe = unsafe { glommio::net::TcpStream::from_raw_fd(duplicate) };
    let mut byte = [0u8; 1];
    // ENOTSOCK once the poll has completed: the epoll descriptor is not a socket.
    let _ = futures_lite::AsyncReadExt::read(&mut probe, &mut byte).await;
    Ok(())
}

/// A socket registered in a core's [`Readiness`]; deregistered and closed when dropped.
struct Registered {
    socket: socket2::Socket,
    slot: Rc<Slot>,
    token: u64,
    readiness: Rc<Readiness>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        // Closing the descriptor (it has no duplicate) removes it from the epoll instance.
        self.readiness.slots.borrow_mut().remove(&self.token);
    }
}

impl Registered {
    /// Runs a non-blocking `operation` until it does not block; waits for readability
    /// (`read`) or writability between tries.
    fn poll_io<T>(
        &self,
        cx: &Context<'_>,
        read: bool,
        mut operation: impl FnMut(&socket2::Socket) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        let (ready, waiter) = if read {
            (&self.slot.readable, &self.slot.reader)
        } else {
            (&self.slot.writable, &self.slot.writer)
        };
        loop {
            if !ready.get() {
                waiter.set(Some(cx.waker().clone()));
                return Poll::Pending;
            }
            match operation(&self.socket) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => ready.set(false),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                result => return Poll::Ready(result),
            }
        }
    }
}

/// A core's listening socket on the client port.
pub struct Listener {
    registered: Registered,
}

impl Listener {
    /// Binds and listens on `address` with SO_REUSEPORT (every core binds its own listener
    /// to the one port, and the kernel spreads the connections over them), as glommio's
    /// `TcpListener::bind` did, and SO_REUSEADDR, as ZooKeeper's listener has
    /// (NIOServerCnxnFactory.configure: `setReuseAddress(true)`): a restarted server binds
    /// over the port's TIME_WAIT connections of an earlier server that did not share the port
    /// (its accepted sockets carry no SO_REUSEPORT). A listening socket still refuses the
    /// bind: SO_REUSEADDR never lets two servers listen on one port (runtime's
    /// `refuse_a_port_in_use` relies on that).
    pub fn bind(readiness: &Rc<Readiness>, address: SocketAddr) -> io::Result<Listener> {
        Ok(Listener {
            registered: readiness.register(listening_socket(address)?)?,
        })
    }

    /// A listener on `socket` (one of [`listening_sockets`]), in the same core's epoll
    /// instance as this one: what a reconfig that moves the client port hands each core.
    pub fn adopt(&self, socket: socket2::Socket) -> io::Result<Listener> {
        Ok(Listener {
            registered: self.registered.readiness.register(socket)?,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.registered
            .socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("the listener has no IP address"))
    }

    /// The next connection, registered in the same core's epoll instance.
    pub async fn accept(&self) -> io::Result<(Stream, SocketAddr)> {
        let (socket, remote) =
            std::future::poll_fn(|cx| self.registered.poll_io(cx, true, |s| s.accept())).await?;
        let remote = remote
            .as_socket()
            .ok_or_else(|| io::Error::other("a connection without an IP address"))?;
        let registered = self.registered.readiness.register(socket)?;
        Ok((Stream { registered }, remote))
    }
}

/// A socket listening on `address` with the options every core's listener has (see
/// [`Listener::bind`]), not registered anywhere yet.
fn listening_socket(address: SocketAddr) -> io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket)
}

/// `count` sockets listening on `address` (one per core, sharing it with SO_REUSEPORT), all
/// or none: a client port that moves (a reconfig changed this member's client address)
/// moves on every core or on none, so that no core keeps the old port alone.
///
/// `address` is refused when another socket listens on it (see [`nobody_listens_on`]):
/// SO_REUSEPORT would otherwise share it with another server of the same user, as
/// runtime's check at startup explains. `shares_our_port` skips that check when the port is
/// the one this server's listeners already hold (another IP on the same port: the probe
/// would find this server's own wildcard listener).
pub fn listening_sockets(
    address: SocketAddr,
    count: usize,
    shares_our_port: bool,
) -> io::Result<Vec<socket2::Socket>> {
    if !shares_our_port && !nobody_listens_on(address) {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another socket listens on this address",
        ));
    }
    (0..count).map(|_| listening_socket(address)).collect()
}

/// Whether no socket listens on `address`: a bind with SO_REUSEADDR (and not SO_REUSEPORT)
/// succeeds, which TIME_WAIT connections do not prevent and a listening socket does. The
/// probe never listens, so it takes no connection.
pub fn nobody_listens_on(address: SocketAddr) -> bool {
    let domain = socket2::Domain::for_address(address);
    let Ok(probe) = socket2::Socket::new(domain, socket2::Type::STREAM, None) else {
        return false;
    };
    probe.set_reuse_address(true).is_ok() && probe.bind(&address.into()).is_ok()
}

/// One client connection: non-blocking recv and send, waiting on the core's epoll instance.
pub struct Stream {
    registered: Registered,
}

impl Stream {
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.registered.socket.set_nodelay(nodelay)
    }

    /// Waits for bytes and copies the first of them into `buf` without consuming them (a
    /// unified port tells TLS from plaintext by the first byte); 0 at the end of the stream.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| {
            self.registered.poll_io(cx, true, |socket| {
                rustix::net::recv(socket, &mut *buf, rustix::net::RecvFlags::PEEK)
                    .map(|(received, _)| received)
                    .map_err(io::Error::from)
            })
        })
        .await
    }
}

impl futures_lite::AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.registered
            .poll_io(cx, true, |mut socket| socket.read(buf))
    }
}

impl futures_lite::AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // socket2's send passes MSG_NOSIGNAL: a client gone away is EPIPE, not SIGPIPE.
        self.registered
            .poll_io(cx, false, |socket| socket.send(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Sends the FIN (shutdown of the write side), as glommio's `poll_close` does; the
    /// descriptor closes when the stream is dropped.
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.registered.socket.shutdown(std::net::Shutdown::Write))
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.registered.socket.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use std::io::Write;
    use std::time::Duration;

    const TEST_TIMEOUT: Duration = Duration::from_secs(10);

    fn run<F: std::future::Future<Output = ()> + 'static>(
        test: impl FnOnce() -> F + Send + 'static,
    ) {
        let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(256 * 1024)
            .spawn(move || async move {
                let outcome = futures_lite::future::or(
                    async {
                        test().await;
                        true
                    },
                    async {
                        glommio::timer::sleep(TEST_TIMEOUT).await;
                        false
                    },
                )
                .await;
                assert!(outcome, "the test did not finish within {TEST_TIMEOUT:?}");
            })
            .unwrap();
        handle.join().unwrap();
    }

    #[test]
    fn the_epoll_probe_waits_until_an_event_arrives() {
        run(|| async {
            let readiness = Readiness::new().unwrap();
            let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
            let registered = readiness
                .register(socket2::Socket::from(OwnedFd::from(theirs)))
                .unwrap();
            let mut events = vec![
                epoll::Event {
                    flags: epoll::EventFlags::empty(),
                    data: epoll::EventData::new_u64(0),
                };
                8
            ];
            // The registration reports the socket writable; take that edge first.
            readiness.dispatch(&mut events).unwrap();
            assert_eq!(readiness.dispatch(&mut events).unwrap(), 0);
            // Nothing arrives: the probe keeps waiting (a timer wins the race).
            let waited = futures_lite::future::or(
                async {
                    epoll_readable(&readiness.epoll).await.unwrap();
                    false
                },
                async {
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                    true
                },
            )
            .await;
            assert!(
                waited,
                "the probe completed with no event in the epoll instance"
            );
            // Data arrives: the probe completes and the event names the socket.
            ours.write_all(b"x").unwrap();
            epoll_readable(&readiness.epoll).await.unwrap();
            assert_eq!(readiness.dispatch(&mut events).unwrap(), 1);
            assert_eq!(events[0].data.u64(), registered.token);
        });
    }

    /// Whether /proc/net/tcp lists a TIME_WAIT (state 06) socket with local port `port`.
    fn time_wait_on(port: u16) -> bool {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let local = format!(":{port:04X}");
        table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[1].ends_with(&local) && fields[3] == "06"
        })
    }

    #[test]
    fn a_listener_binds_over_time_wait_connections_of_an_earlier_server() {
        // An earlier server (std's listener: no SO_REUSEPORT) closes a connection first, so
        // the connection waits in TIME_WAIT on the server's port after the server is gone.
        let earlier = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = earlier.local_addr().unwrap();
        let mut client = std::net::TcpStream::connect(address).unwrap();
        let (served, _) = earlier.accept().unwrap();
        drop(served);
        drop(earlier);
        client.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut client, &mut byte).unwrap(), 0);
        drop(client);
        let deadline = std::time::Instant::now() + TEST_TIMEOUT;
        while !time_wait_on(address.port()) {
            assert!(
                std::time::Instant::now() < deadline,
                "no TIME_WAIT connection appeared"
            );
            std::thread::yield_now(); // the kernel's state change has no event to await
        }
        run(move || async move {
            let readiness = Readiness::new().unwrap();
            // Without SO_REUSEADDR: EADDRINUSE (ZooKeeper's bind succeeds here).
            let listener = Listener::bind(&readiness, address).unwrap();
            assert_eq!(listener.local_addr().unwrap(), address);
            // A second server listening on the port is still refused by a plain bind.
            assert!(std::net::TcpListener::bind(address).is_err());
        });
    }

    /// What a reconfig that moves the client port does to one core's listener
    /// (NIOServerCnxnFactory.reconfigure): new connections on the new address, refused on the
    /// old one, and a connection accepted before the move stays up.
    #[test]
    fn a_moved_listener_accepts_on_the_new_address_and_the_old_one_refuses() {
        run(|| async {
            let readiness = Readiness::new().unwrap();
            glommio::spawn_local(drive(readiness.clone())).detach();
            let old = Listener::bind(&readiness, "127.0.0.1:0".parse().unwrap()).unwrap();
            let old_address = old.local_addr().unwrap();
            let mut kept_client = std::net::TcpStream::connect(old_address).unwrap();
            let (mut kept, _) = old.accept().await.unwrap();

            // An address another socket listens on is refused, with no socket bound.
            let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let refused = listening_sockets(taken.local_addr().unwrap(), 2, false);
            assert_eq!(
                refused
                    .map(|sockets| sockets.len())
                    .map_err(|error| error.kind()),
                Err(io::ErrorKind::AddrInUse)
            );
            // A free address: one socket per core, all on it.
            let free = || {
                let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                probe.local_addr().unwrap()
            };
            let shared = free();
            let sockets = listening_sockets(shared, 3, false).unwrap();
            assert_eq!(sockets.len(), 3);
            for socket in &sockets {
                assert_eq!(socket.local_addr().unwrap().as_socket(), Some(shared));
            }
            drop(sockets);

            let new_address = free();
            let mut sockets = listening_sockets(new_address, 1, false).unwrap();
            let moved = old.adopt(sockets.remove(0)).unwrap();
            drop(old);
            assert_eq!(moved.local_addr().unwrap(), new_address);
            let _new_client = std::net::TcpStream::connect(new_address).unwrap();
            let (_, remote) = moved.accept().await.unwrap();
            assert!(remote.ip().is_loopback());
            assert_eq!(
                std::net::TcpStream::connect(old_address)
                    .map(|_| ())
                    .map_err(|error| error.kind()),
                Err(io::ErrorKind::ConnectionRefused)
            );
            kept_client.write_all(b"kept").unwrap();
            let mut received = [0u8; 4];
            kept.read_exact(&mut received).await.unwrap();
            assert_eq!(&received, b"kept");
        });
    }

    #[test]
    fn connections_are_accepted_read_written_and_closed_through_epoll() {
        run(|| async {
            let readiness = Readiness::new().unwrap();
            glommio::spawn_local(drive(readiness.clone())).detach();
            let listener = Listener::bind(&readiness, "127.0.0.1:0".parse().unwrap()).unwrap();
            let address = listener.local_addr().unwrap();
            let client = std::thread::spawn(move || {
                use std::io::Read;
                let mut stream = std::net::TcpStream::connect(address).unwrap();
                stream.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
                stream.write_all(b"ping").unwrap();
                let mut reply = Vec::new();
                // The server echoes and closes its side: read to EOF.
                stream.read_to_end(&mut reply).unwrap();
                reply
            });
            let (mut stream, remote) = listener.accept().await.unwrap();
            assert!(remote.ip().is_loopback());
            stream.set_nodelay(true).unwrap();
            let mut received = [0u8; 4];
            stream.read_exact(&mut received).await.unwrap();
            // A large reply exercises EAGAIN on send and the wait for writability.
            let mut reply = received.repeat(1 << 20);
            reply.truncate(4 << 20);
            stream.write_all(&reply).await.unwrap();
            stream.close().await.unwrap();
            let echoed = glommio::executor()
                .spawn_blocking(move || client.join().unwrap())
                .await;
            assert_eq!(echoed.len(), reply.len());
            assert!(echoed.chunks(4).all(|chunk| chunk == b"ping"));
        });
    }
}
