// listen_linux.go opens the slots' listening sockets with SO_REUSEPORT.

package prefork

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

const supported = true

// listenConfig makes sockets that share their address with the other
// slots' sockets: the kernel spreads incoming connections over them.
var listenConfig = net.ListenConfig{
	Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	},
}

// listen opens a listening socket on addr and returns a raw descriptor of
// it to hand to workers (close-on-exec; it is passed explicitly), with the
// address it is bound to.
//
// The descriptor is raw on purpose: every worker of a slot shares the
// socket's open file description, and turning it into an *os.File to pass
// it would make os/exec switch the shared description to blocking mode,
// under the workers already accepting on it.
func listen(addr string) (int, net.Addr, error) {
	ln, err := listenConfig.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return -1, nil, fmt.Errorf("prefork: listen: %w", err)
	}
	defer ln.Close() // the duplicate below keeps the socket
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		return -1, nil, fmt.Errorf("prefork: listener: %w", err)
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, nil, fmt.Errorf("prefork: listener: %w", err)
	}
	if derr != nil {
		return -1, nil, fmt.Errorf("prefork: duplicating listener: %w", derr)
	}
	return fd, ln.Addr(), nil
}
