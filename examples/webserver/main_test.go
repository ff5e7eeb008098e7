package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// pipeListener hands out the server ends of in-memory connections (net.Pipe), so that the
// server's deadlines run on a synctest bubble's clock.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestServerCutsSlowClients: the example's server had a ReadHeaderTimeout only, so a client
// that sent its headers and then a body a byte at a time, or never, held a connection and its
// goroutine for as long as it liked, and so did an idle keep-alive connection. The server ends
// a request whose body is not in within ReadTimeout, and idle connections after IdleTimeout,
// while a long-polled status request (weblogin's LongPoll plus a provider poll) still fits in
// WriteTimeout.
func TestServerCutsSlowClients(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
		}))
		if srv.WriteTimeout < 45*time.Second {
			t.Errorf("WriteTimeout %v: want a bound, above the 40 s a long-polled status request may take (20 s, plus a provider poll of up to 20 s)", srv.WriteTimeout)
		}
		l := newPipeListener()
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l) }()

		for _, tc := range []struct {
			name, send string
			limit      time.Duration
		}{
			{"trickled body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab", srv.ReadTimeout},
			{"idle keep-alive", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", srv.IdleTimeout},
		} {
			c := l.dial()
			t0 := time.Now()
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(t0.Add(10 * time.Minute))
			_, err := io.Copy(io.Discard, c) // a response, if any, then the end of the connection
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("%s: the server held the connection for 10 minutes", tc.name)
			} else if d := time.Since(t0); tc.limit <= 0 || d > tc.limit+time.Second {
				t.Errorf("%s: closed after %v, limit %v", tc.name, d, tc.limit)
			}
			c.Close()
		}
		_ = srv.Close()
		<-served
	})
}
