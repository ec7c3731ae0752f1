package server

import (
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// limitListener bounds the open connections in all and per remote IP
// address. A connection over a limit is handed to refuse (which answers it
// with a problem and closes it) and never reaches the HTTP server.
type limitListener struct {
	net.Listener
	max, perIP int
	refuse     func(c net.Conn, perIP bool)

	open  atomic.Int64
	mu    sync.Mutex
	byIP  map[netip.Addr]int
	close sync.Once
}

func newLimitListener(ln net.Listener, max, perIP int, refuse func(net.Conn, bool)) *limitListener {
	return &limitListener{Listener: ln, max: max, perIP: perIP, refuse: refuse, byIP: map[netip.Addr]int{}}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		if l.open.Add(1) > int64(l.max) {
			l.open.Add(-1)
			go l.refuse(c, false)
			continue
		}
		l.mu.Lock()
		n := l.byIP[ip] + 1
		if n > l.perIP {
			l.mu.Unlock()
			l.open.Add(-1)
			go l.refuse(c, true)
			continue
		}
		l.byIP[ip] = n
		l.mu.Unlock()
		return &limitedConn{Conn: c, l: l, ip: ip}, nil
	}
}

func (l *limitListener) release(ip netip.Addr) {
	l.open.Add(-1)
	l.mu.Lock()
	if n := l.byIP[ip] - 1; n > 0 {
		l.byIP[ip] = n
	} else {
		delete(l.byIP, ip)
	}
	l.mu.Unlock()
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

type limitedConn struct {
	net.Conn
	l    *limitListener
	ip   netip.Addr
	once sync.Once
	// wrote: an answer was written since the last read.
	wrote atomic.Bool
	// linger: the client may still be sending what the server did not
	// read (see lingerOnClose).
	linger atomic.Bool
}

// Bounds of a lingering close: how long and how much the server keeps
// reading, and discarding, after its answer.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 1 << 20
)

// lingerOnClose marks a connection whose answer was written before the
// request was read to its end (a body over the route's limit, a malformed
// request). Closing such a connection outright, with the client's bytes
// unread, makes the system answer them with a reset, which can destroy
// the answer before the client reads it. Closing a marked connection
// instead ends the server's side of the stream (the client sees the whole
// answer, then the end) and reads away what the client still sends, up to
// lingerBytes for up to lingerTime, before closing it. The connection
// keeps its place in the connection limits until then.
func lingerOnClose(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*limitedConn); ok {
		lc.linger.Store(true)
	}
}

// Write writes to the connection.
func (c *limitedConn) Write(b []byte) (int, error) {
	c.wrote.Store(true)
	return c.Conn.Write(b)
}

// Read reads from the connection. The first read after an answer yields
// first, so that the other requests ready to be served go before it: a
// client sends its next request only once it has the answer, so reading
// at once mostly finds nothing (a system call answering EAGAIN, then a
// wait for the poller), while under load, by the time the others are
// served, the next request is there. Without other work the yield returns
// at once.
func (c *limitedConn) Read(b []byte) (int, error) {
	if c.wrote.Swap(false) {
		runtime.Gosched()
	}
	return c.Conn.Read(b)
}

func (c *limitedConn) Close() error {
	if c.linger.Swap(false) {
		if tc, ok := c.Conn.(*net.TCPConn); ok && tc.CloseWrite() == nil {
			go c.drainAndClose()
			return nil
		}
	}
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// drainAndClose finishes a lingering close (lingerOnClose).
func (c *limitedConn) drainAndClose() {
	drainClose(c.Conn, lingerTime, lingerBytes)
	c.once.Do(func() { c.l.release(c.ip) })
}

// lingerClose closes c after its answer was written: it ends the sending
// side, reads away what the client still sends (up to n bytes for up to
// d), then closes. Without a TCP connection it just closes.
func lingerClose(c net.Conn, d time.Duration, n int64) {
	if tc, ok := c.(*net.TCPConn); ok && tc.CloseWrite() == nil {
		drainClose(c, d, n)
		return
	}
	c.Close()
}

// drainClose reads away up to n bytes for up to d, then closes c.
func drainClose(c net.Conn, d time.Duration, n int64) {
	if c.SetReadDeadline(time.Now().Add(d)) == nil {
		_, _ = io.CopyN(io.Discard, c, n)
	}
	c.Close()
}
