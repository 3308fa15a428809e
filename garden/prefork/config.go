// config.go defines the Config of Run, its defaults and their reasons.

package prefork

import (
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"time"
)

// Config configures Run. It must be the same in the parent and the workers
// (it is, when both build it from the same flags).
type Config struct {
	// Addr is the TCP address to serve on, host:port. Port 0 lets the
	// kernel choose one (see OnReady). Required.
	Addr string
	// Workers is the number of worker processes. Default runtime.NumCPU():
	// one per core, since each worker is a whole Go runtime.
	Workers int
	// ShutdownTimeout bounds a worker's graceful shutdown: requests still
	// running after it are cut. Default 30 s, long enough for slow clients
	// and short enough for a deploy.
	ShutdownTimeout time.Duration
	// ReadyTimeout bounds how long a new worker may take to report ready.
	// Default 30 s.
	ReadyTimeout time.Duration
	// RestartDelay is the first delay before restarting a worker that
	// exited; it doubles on every further exit up to MaxRestartDelay.
	// Default 100 ms: a crash costs little, a crash loop costs little CPU.
	RestartDelay time.Duration
	// MaxRestartDelay caps RestartDelay. Default 10 s.
	MaxRestartDelay time.Duration
	// OnReady, if set, is called in the parent once every worker is ready,
	// with the address the sockets are bound to.
	OnReady func(addr net.Addr)
	// Logger receives worker starts, exits and restarts. Default
	// slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 30 * time.Second
	}
	if c.RestartDelay == 0 {
		c.RestartDelay = 100 * time.Millisecond
	}
	if c.MaxRestartDelay == 0 {
		c.MaxRestartDelay = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c *Config) validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("%w: %s %v: %s", ErrBadConfig, field, v, want)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return bad("Addr", c.Addr, "must be host:port")
	}
	switch {
	case c.Workers < 1 || c.Workers > 1024:
		return bad("Workers", c.Workers, "must be between 1 and 1024")
	case c.ShutdownTimeout < 0:
		return bad("ShutdownTimeout", c.ShutdownTimeout, "must not be negative")
	case c.ReadyTimeout < 0:
		return bad("ReadyTimeout", c.ReadyTimeout, "must not be negative")
	case c.RestartDelay < 0 || c.MaxRestartDelay < c.RestartDelay:
		return bad("RestartDelay", c.RestartDelay, "must not be negative nor above MaxRestartDelay")
	}
	return nil
}
