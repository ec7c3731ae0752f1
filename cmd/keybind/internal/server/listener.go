package server

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
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
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
