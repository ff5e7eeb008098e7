package redisstore

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server process that a test started, on a free loopback port.
type redisServer struct {
	t    testing.TB
	addr string
	dir  string
	cmd  *exec.Cmd
}

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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &redisServer{t: t, addr: "127.0.0.1:" + strconv.Itoa(port), dir: t.TempDir()}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", s.dir, "--save", "", "--daemonize", "no",
		"--protected-mode", "yes", "--loglevel", "warning", "--logfile", filepath.Join(s.dir, "redis.log")}
	if persistent {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	s.start(bin, args)
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) start(bin string, args []string) {
	s.t.Helper()
	s.cmd = exec.Command(bin, args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.addr})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redis-server did not answer: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond) // waiting for a process to start listening
	}
}

// stop ends the server by its PID (SIGTERM) and waits for it.
func (s *redisServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// restart starts the server again on the same port and directory.
func (s *redisServer) restart() {
	s.t.Helper()
	bin, _ := exec.LookPath("redis-server")
	port := s.addr[strings.LastIndex(s.addr, ":")+1:]
	s.start(bin, []string{"--port", port, "--bind", "127.0.0.1", "--dir", s.dir, "--save", "", "--daemonize", "no",
		"--appendonly", "yes", "--appendfsync", "always", "--loglevel", "warning", "--logfile", filepath.Join(s.dir, "redis.log")})
}

// client returns a go-redis client of s with short timeouts, closed when the test ends.
func (s *redisServer) client() *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: s.addr, DialTimeout: 500 * time.Millisecond,
		ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: 1})
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
