// gozk_ngaut drives the older Go client fork github.com/ngaut/go-zookeeper/zk (Debian package
// golang-github-ngaut-go-zookeeper-dev, a 2015 snapshot of samuel/go-zookeeper that TiDB's
// and Codis's tooling used) through AddAuth against a server, for
// tests/compat/test_go_client.py.
//
// Usage: gozk_ngaut SCENARIO ROOT HOST:PORT[,HOST:PORT...]
//
// Scenarios (ROOT is a fresh path the scenario creates and removes again):
//
//	auth     AddAuth("digest") returns (this client too sends the auth packet with an ordinary
//	         xid and waits for the reply with that xid); a digest-ACL'd node reads on that
//	         session and is ErrNoAuth to another; AddAuth with a scheme the server has no
//	         provider for returns ErrAuthFailed, the server closes the connection, and the
//	         client carries on with its session.
//	reauth   AddAuth, then the TCP connection is cut under the client. This client keeps no
//	         record of its credentials, so it does not re-submit them after the reconnect:
//	         the session's new connection is unauthenticated and the ACL'd node is ErrNoAuth
//	         (ZooKeeper keeps authentication per connection, ServerCnxn.authInfo); AddAuth on
//	         the resumed session then returns and the node reads again.
//
// Every step prints "ok STEP" or "FAIL STEP: reason"; a step that does not finish within its
// deadline fails (the client waits for a reply forever: a reply with the wrong xid is a hang).
// Exit status 0 when every step passed.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ngaut/go-zookeeper/zk"
)

const stepTimeout = 20 * time.Second

// The client's recvTimeout is also the session timeout it asks for (30 s, clamped by the
// server) and twice its ping interval.
const recvTimeout = 6 * time.Second

var failed bool

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

func mustStep(name string, fn func() error) {
	if !step(name, fn) {
		os.Exit(1)
	}
}

// recorder drains the client's event channel (which drops events when full) and keeps the
// session states, so a scenario waits for a state change instead of sleeping.
type recorder struct {
	mu     sync.Mutex
	states []zk.State
	notify chan struct{}
}

func record(events <-chan zk.Event) *recorder {
	r := &recorder{notify: make(chan struct{}, 1)}
	go func() {
		for event := range events {
			if event.Type != zk.EventSession {
				continue
			}
			r.mu.Lock()
			r.states = append(r.states, event.State)
			r.mu.Unlock()
			select {
			case r.notify <- struct{}{}:
			default:
			}
		}
	}()
	return r
}

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

func connect(servers []string, dialer zk.Dialer) (*zk.Conn, *recorder, error) {
	conn, events, err := zk.ConnectWithDialer(servers, recvTimeout, dialer)
	if err != nil {
		return nil, nil, err
	}
	rec := record(events)
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

func expectNoAuth(conn *zk.Conn, root string) error {
	_, _, err := conn.Get(root + "/secret")
	if err != zk.ErrNoAuth {
		return fmt.Errorf("got %v, want %v", err, zk.ErrNoAuth)
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
	step("get without credential is refused", func() error { return expectNoAuth(other, root) })
	mark := otherStates.count()
	step("addauth with an unknown scheme fails", func() error {
		err := other.AddAuth("no-such-scheme", []byte("x"))
		if err != zk.ErrAuthFailed {
			return fmt.Errorf("got %v, want %v", err, zk.ErrAuthFailed)
		}
		return nil
	})
	step("server closes the connection after the failed addauth", func() error {
		return otherStates.waitFor(mark, zk.StateDisconnected, zk.StateHasSession)
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
	mark := rec.count()
	mustStep("cut the connection", dialer.cut)
	mustStep("session back after reconnect", func() error {
		// StateExpired instead would mean the server refused the session's id and password.
		return rec.waitFor(mark, zk.StateDisconnected, zk.StateHasSession)
	})
	step("get on the new connection without credential is refused", func() error {
		return expectNoAuth(conn, root)
	})
	step("addauth on the resumed session", func() error { return conn.AddAuth("digest", credential) })
	step("get with the credential submitted again", func() error { return expectSecret(conn, root) })
	cleanup(conn, root)
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: gozk_ngaut auth|reauth ROOT HOST:PORT[,HOST:PORT...]")
		os.Exit(2)
	}
	scenario, root, servers := os.Args[1], os.Args[2], strings.Split(os.Args[3], ",")
	switch scenario {
	case "auth":
		scenarioAuth(root, servers)
	case "reauth":
		scenarioReauth(root, servers)
	default:
		fmt.Fprintf(os.Stderr, "unknown scenario %q\n", scenario)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}
