package pgtest

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proxy forwards TCP connections to a Postgres server until it is cut: then it drops
// every open connection and refuses new ones, as an unreachable database would, until
// it is restored on the same address. Tests of outages point a pool at it (URL).
type Proxy struct {
	// Addr is the proxy's address (127.0.0.1:port).
	Addr   string
	target string

	mu      sync.Mutex
	ln      net.Listener // nil while cut
	hanging bool         // accepting connections but never answering (Hang)
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// StartProxy starts a proxy to target (host:port) on a free loopback port, and cuts it
// and waits for its goroutines when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: proxy: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(func() {
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// ProxyURL starts a proxy to the server of the connection URL dsn (see StartProxy) and
// returns it with dsn rewritten to go through it.
func ProxyURL(t testing.TB, dsn string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("pgtest: proxy: %q is not a postgres:// URL with a host", dsn)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5432")
	}
	p := StartProxy(t, host)
	u.Host = p.Addr
	return p, u.String()
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by Cut
			}
			p.mu.Lock()
			hanging := p.hanging
			if hanging {
				p.conns[c] = struct{}{} // held open, unanswered, until Restore or Cut
			}
			p.mu.Unlock()
			if hanging {
				continue
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.pipe(c)
			}()
		}
	}()
}

// pipe copies between the client c and a new connection to the target.
func (p *Proxy) pipe(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, up) {
		c.Close()
		up.Close()
		return
	}
	done := make(chan struct{}, 2)
	copyHalf := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go copyHalf(up, c)
	go copyHalf(c, up)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// track registers both ends of a proxied connection, unless the proxy was cut
// meanwhile.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// Cut closes the listener and every open connection.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// Hang drops every open connection, then accepts new ones and never answers them, as a
// database host that stopped answering without resetting connections would, until
// Restore or Cut.
func (p *Proxy) Hang() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hanging = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore forwards again: it listens again on the proxy's address after Cut, and after
// Hang closes the connections it held.
func (p *Proxy) Restore(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	if p.hanging {
		p.hanging = false
		for c := range p.conns {
			c.Close()
			delete(p.conns, c)
		}
	}
	listening := p.ln != nil
	p.mu.Unlock()
	if listening {
		return
	}
	var ln net.Listener
	var err error
	for range 50 { // the port may linger a moment after close
		if ln, err = net.Listen("tcp", p.Addr); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("pgtest: restore the proxy on %s: %v", p.Addr, err)
	}
	p.serve(ln)
}
