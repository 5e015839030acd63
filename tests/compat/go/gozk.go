// gozk drives the Go client go-zookeeper (github.com/samuel/go-zookeeper/zk, Debian package
// golang-github-samuel-go-zookeeper-dev) through one scenario against a server, for
// tests/compat/test_go_client.py and tests/ensemble/test_go_client.py.
//
// Usage: gozk SCENARIO ROOT HOST:PORT[,HOST:PORT...]
//
// Scenarios (ROOT is a fresh path the scenario creates and removes again):
//
//	auth     AddAuth("digest") returns; a node created with a digest ACL reads back on that
//	         session and is refused (ErrNoAuth) to a session without the credential;
//	         AddAuth with a scheme the server has no provider for returns ErrAuthFailed, the
//	         server closes the connection, and the client carries on with its session.
//	reauth   AddAuth, then the TCP connection is cut under the client (its dialer's conn is
//	         closed); once the client has its session back (same id), the ACL'd node still
//	         reads: the client re-submitted its credentials after the reconnect and got a reply.
//	restart  connects, prints "connected HOST:PORT", and waits for a line on stdin (the test
//	         stops and starts that member meanwhile); then a Create and a Get must succeed,
//	         as in the client's own TestDNSHostProviderReconnect.
//
// Every step prints "ok STEP" or "FAIL STEP: reason"; a step that does not finish within its
// deadline fails (go-zookeeper waits for a reply forever: a reply with the wrong xid is a hang,
// which must show as a failure, not as a stuck test). Exit status 0 when every step passed.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/samuel/go-zookeeper/zk"
)

// stepTimeout bounds one client call. Generous for a loaded 2-core CI machine, and far below
// the test's own timeout, so a hang is reported with the step that hung.
const stepTimeout = 20 * time.Second

// sessionTimeout is what the client asks for. Servers clamp it to their min/max
// (2..20 ticks by default); a few seconds keeps a slow machine from expiring the session
// while a member restarts.
const sessionTimeout = 6 * time.Second

var failed bool

// step runs fn with a deadline and reports the outcome. A timed-out fn keeps running in its
// goroutine; the process exits at the end of the scenario anyway.
func step(name string, fn func() error) bool {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", name, err)
			failed = true
			return false
		}
		fmt.Printf("ok %s\n", name)
		return true
	case <-time.After(stepTimeout):
		fmt.Printf("FAIL %s: no answer within %v\n", name, stepTimeout)
		failed = true
		return false
	}
}

// mustStep stops the scenario at a failed step whose result later steps depend on.
func mustStep(name string, fn func() error) {
	if !step(name, fn) {
		os.Exit(1)
	}
}

// recorder keeps every session-state event the client reports, so a scenario can wait for a
// state change instead of sleeping.
type recorder struct {
	mu     sync.Mutex
	states []zk.State
	notify chan struct{}
}

func newRecorder() *recorder {
	return &recorder{notify: make(chan struct{}, 1)}
}

func (r *recorder) callback(event zk.Event) {
	if event.Type != zk.EventSession {
		return
	}
	r.mu.Lock()
	r.states = append(r.states, event.State)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// waitFor waits until the states recorded from index `from` on contain `want` in that order.
func (r *recorder) waitFor(from int, want ...zk.State) error {
	deadline := time.After(stepTimeout)
	for {
		r.mu.Lock()
		matched := 0
		for _, state := range r.states[from:] {
			if matched < len(want) && state == want[matched] {
				matched++
			}
		}
		seen := append([]zk.State(nil), r.states[from:]...)
		r.mu.Unlock()
		if matched == len(want) {
			return nil
		}
		select {
		case <-r.notify:
		case <-deadline:
			return fmt.Errorf("states %v, wanted %v in order", seen, want)
		}
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.states)
}

// cuttable dials as net.DialTimeout does and remembers the last connection, so the scenario
// can cut it under the client (a network failure as the client sees it).
type cuttable struct {
	mu   sync.Mutex
	last net.Conn
}

func (c *cuttable) dial(network, address string, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout(network, address, timeout)
	if err == nil {
		c.mu.Lock()
		c.last = conn
		c.mu.Unlock()
	}
	return conn, err
}

func (c *cuttable) cut() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		return errors.New("no connection to cut")
	}
	return c.last.Close()
}

type quietLogger struct{}

// Printf keeps the client's log on stderr, where the test shows it on a failure.
func (quietLogger) Printf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-zookeeper: "+format+"\n", args...)
}

// connect opens a session; dialer nil means net.DialTimeout (the client's default).
func connect(servers []string, dialer zk.Dialer) (*zk.Conn, *recorder, error) {
	rec := newRecorder()
	if dialer == nil {
		dialer = net.DialTimeout
	}
	conn, _, err := zk.Connect(servers, sessionTimeout, zk.WithEventCallback(rec.callback),
		zk.WithLogger(quietLogger{}), zk.WithDialer(dialer))
	if err != nil {
		return nil, nil, err
	}
	if err := rec.waitFor(0, zk.StateHasSession); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("no session: %v", err)
	}
	return conn, rec, nil
}

const (
	user     = "gozk"
	password = "secret"
)

var credential = []byte(user + ":" + password)

// createACLNode makes ROOT (open) and ROOT/secret (readable only with the credential).
func createACLNode(conn *zk.Conn, root string) {
	mustStep("create root", func() error {
		_, err := conn.Create(root, nil, 0, zk.WorldACL(zk.PermAll))
		return err
	})
	mustStep("create with digest ACL", func() error {
		_, err := conn.Create(root+"/secret", []byte("hidden"), 0, zk.DigestACL(zk.PermAll, user, password))
		return err
	})
}

func expectSecret(conn *zk.Conn, root string) error {
	data, _, err := conn.Get(root + "/secret")
	if err != nil {
		return err
	}
	if string(data) != "hidden" {
		return fmt.Errorf("read %q", data)
	}
	return nil
}

func cleanup(conn *zk.Conn, root string) {
	step("cleanup", func() error {
		if err := conn.Delete(root+"/secret", -1); err != nil && err != zk.ErrNoNode {
			return err
		}
		if err := conn.Delete(root, -1); err != nil && err != zk.ErrNoNode {
			return err
		}
		return nil
	})
}

func scenarioAuth(root string, servers []string) {
	conn, _, err := connect(servers, nil)
	if err != nil {
		fmt.Printf("FAIL connect: %v\n", err)
		os.Exit(1)
	}
	defer conn.Close()
	mustStep("addauth digest", func() error { return conn.AddAuth("digest", credential) })
	createACLNode(conn, root)
	step("get with credential", func() error { return expectSecret(conn, root) })

	other, otherStates, err := connect(servers, nil)
	if err != nil {
		fmt.Printf("FAIL connect second session: %v\n", err)
		os.Exit(1)
	}
	step("get without credential is refused", func() error {
		_, _, err := other.Get(root + "/secret")
		if err != zk.ErrNoAuth {
			return fmt.Errorf("got %v, want %v", err, zk.ErrNoAuth)
		}
		return nil
	})
	mark := otherStates.count()
	session := other.SessionID()
	step("addauth with an unknown scheme fails", func() error {
		err := other.AddAuth("no-such-scheme", []byte("x"))
		if err != zk.ErrAuthFailed {
			return fmt.Errorf("got %v, want %v", err, zk.ErrAuthFailed)
		}
		return nil
	})
	// ZooKeeperServer.processPacket closes the connection after AUTHFAILED; the client
	// reconnects with its session.
	step("server closes the connection after the failed addauth", func() error {
		if err := otherStates.waitFor(mark, zk.StateDisconnected, zk.StateHasSession); err != nil {
			return err
		}
		if other.SessionID() != session {
			return fmt.Errorf("session %#x, was %#x", other.SessionID(), session)
		}
		return nil
	})
	step("session carries on after the failed addauth", func() error {
		_, _, err := other.Get(root)
		return err
	})
	other.Close()
	cleanup(conn, root)
}

func scenarioReauth(root string, servers []string) {
	dialer := &cuttable{}
	conn, rec, err := connect(servers, dialer.dial)
	if err != nil {
		fmt.Printf("FAIL connect: %v\n", err)
		os.Exit(1)
	}
	defer conn.Close()
	mustStep("addauth digest", func() error { return conn.AddAuth("digest", credential) })
	createACLNode(conn, root)
	session := conn.SessionID()
	mark := rec.count()
	mustStep("cut the connection", dialer.cut)
	mustStep("session back after reconnect", func() error {
		if err := rec.waitFor(mark, zk.StateDisconnected, zk.StateHasSession); err != nil {
			return err
		}
		if conn.SessionID() != session {
			return fmt.Errorf("session %#x, was %#x", conn.SessionID(), session)
		}
		return nil
	})
	step("get with re-submitted credential", func() error { return expectSecret(conn, root) })
	cleanup(conn, root)
}

func scenarioRestart(root string, servers []string) {
	conn, _, err := connect(servers, nil)
	if err != nil {
		fmt.Printf("FAIL connect: %v\n", err)
		os.Exit(1)
	}
	defer conn.Close()
	// An operation first, as TestDNSHostProviderReconnect does, so the session is in use.
	mustStep("delete before restart", func() error {
		err := conn.Delete(root, -1)
		if err != nil && err != zk.ErrNoNode {
			return err
		}
		return nil
	})
	fmt.Printf("connected %s\n", conn.Server())
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Printf("FAIL waiting for the go-ahead: %v\n", err)
		os.Exit(1)
	}
	step("create after restart", func() error {
		path, err := conn.Create(root, []byte{1, 2, 3, 4}, 0, zk.WorldACL(zk.PermAll))
		if err == nil && path != root {
			return fmt.Errorf("created %q", path)
		}
		return err
	})
	step("get after restart", func() error {
		data, _, err := conn.Get(root)
		if err == nil && len(data) != 4 {
			return fmt.Errorf("read %d bytes", len(data))
		}
		return err
	})
	fmt.Printf("server %s\n", conn.Server())
	step("cleanup", func() error {
		err := conn.Delete(root, -1)
		if err != nil && err != zk.ErrNoNode {
			return err
		}
		return nil
	})
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: gozk auth|reauth|restart ROOT HOST:PORT[,HOST:PORT...]")
		os.Exit(2)
	}
	scenario, root, servers := os.Args[1], os.Args[2], strings.Split(os.Args[3], ",")
	switch scenario {
	case "auth":
		scenarioAuth(root, servers)
	case "reauth":
		scenarioReauth(root, servers)
	case "restart":
		scenarioRestart(root, servers)
	default:
		fmt.Fprintf(os.Stderr, "unknown scenario %q\n", scenario)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}
