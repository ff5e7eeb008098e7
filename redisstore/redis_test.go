package redisstore

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server process that a test started, on a free loopback port.
type redisServer struct {
	t      testing.TB
	addr   string
	dir    string
	args   []string
	cmd    *exec.Cmd
	exited chan error // receives cmd's end
}

// redisStartTimeout bounds the wait for a redis-server to say it accepts connections: a real
// wait on another process, generous for a loaded machine (it takes milliseconds when idle).
const redisStartTimeout = 30 * time.Second

// redisReadyLine is what redis-server logs (at notice level) once it listens and has loaded its
// data.
const redisReadyLine = "Ready to accept connections"

// startRedis returns the Redis of ONESOIDC_TEST_REDIS_ADDR (set by .ci/run), or starts
// redis-server from PATH on a free loopback port, stopped by its PID when the test ends.
// persistent servers keep their data across restart (append-only file).
func startRedis(t testing.TB, persistent bool) *redisServer {
	t.Helper()
	if addr := os.Getenv("ONESOIDC_TEST_REDIS_ADDR"); addr != "" && !persistent {
		return &redisServer{t: t, addr: addr}
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH (install the Debian package redis-server, or set ONESOIDC_TEST_REDIS_ADDR): %v", err)
	}
	s := &redisServer{t: t, dir: t.TempDir()}
	t.Cleanup(s.stop)
	// The port is free when picked, but another process may take it before redis-server binds
	// it: then redis-server exits saying so, and another port is tried.
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		_ = l.Close()
		s.addr = "127.0.0.1:" + port
		s.args = []string{"--port", port, "--bind", "127.0.0.1", "--dir", s.dir, "--save", "", "--daemonize", "no",
			"--protected-mode", "yes", "--loglevel", "notice"} // notice: the level of redisReadyLine
		if persistent {
			s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "always")
		} else {
			s.args = append(s.args, "--appendonly", "no")
		}
		if s.start(bin) {
			return s
		}
	}
	t.Fatal("redis-server found its port taken five times")
	return nil
}

// start runs redis-server with s.args and waits until it logs redisReadyLine (not a timed
// retry: the server says when it listens). It reports false when redis-server exited because
// its port was taken; any other failure ends the test with the server's log.
func (s *redisServer) start(bin string) bool {
	s.t.Helper()
	out := &redisLog{ready: make(chan struct{})}
	cmd := exec.Command(bin, s.args...)
	cmd.Stdout, cmd.Stderr = out, out // no --logfile: the log comes on standard output
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.cmd, s.exited = cmd, exited
	timeout := time.NewTimer(redisStartTimeout)
	defer timeout.Stop()
	select {
	case <-out.ready:
		return true
	case err := <-exited:
		s.cmd = nil
		if strings.Contains(out.String(), "Address already in use") {
			return false
		}
		s.t.Fatalf("redis-server exited before accepting connections (%v):\n%s", err, out)
	case <-timeout.C:
		s.t.Fatalf("redis-server did not log %q within %v:\n%s", redisReadyLine, redisStartTimeout, out)
	}
	return false
}

// redisLog is the output of a redis-server: kept for failure messages, and watched for
// redisReadyLine. It is safe for concurrent use.
type redisLog struct {
	mu    sync.Mutex
	b     bytes.Buffer
	ready chan struct{} // closed once redisReadyLine was written
}

func (l *redisLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.Write(p)
	}
	select {
	case <-l.ready:
	default:
		if bytes.Contains(l.b.Bytes(), []byte(redisReadyLine)) {
			close(l.ready)
		}
	}
	return len(p), nil
}

func (l *redisLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// stop ends the server by its PID (SIGTERM) and waits for it.
func (s *redisServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.exited
	s.cmd = nil
}

// restart starts the server again on the same port and directory.
func (s *redisServer) restart() {
	s.t.Helper()
	bin, _ := exec.LookPath("redis-server")
	if !s.start(bin) {
		s.t.Fatalf("redis-server could not listen on %s again: the port was taken", s.addr)
	}
}

// client returns a go-redis client of s with short timeouts, closed when the test ends. It
// retries a command once, and neither waits between retries nor redials a refused connection
// (go-redis's defaults: 5 dials 100 ms apart, retries up to 512 ms apart), so that the tests of a
// stopped Redis take no real time.
func (s *redisServer) client() *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: s.addr, DialTimeout: 500 * time.Millisecond,
		ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: 1,
		MinRetryBackoff: -1, MaxRetryBackoff: -1, DialerRetries: 1})
	s.t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// newStore returns a Store on s with a prefix of its own, closed when the test ends.
func newStore(t testing.TB, rdb redis.UniversalClient, prefix string) *Store {
	t.Helper()
	st, err := New(rdb, WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// uniquePrefix is a key prefix of one test, so that tests sharing a Redis do not meet.
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("{test-%s-%d}:", strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()), time.Now().UnixNano())
}
