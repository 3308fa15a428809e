// config.go defines the Config of a Store, its defaults and their reasons,
// and the check Open runs on it.

package garden

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gardenstate/gardenstate/shm"
)

// Config configures a Store. The zero value of every field but App is a
// sensible default, given beside the field with its reason.
type Config struct {
	// App names the application. It is stored in the segment header and
	// mixed into the cookie key, so that two applications sharing a farm
	// key cannot read each other's cookies. Required; at most 64 bytes.
	App string

	// SegmentPath is the segment file. Default /dev/shm/gardenstate-<App>:
	// tmpfs, so the sessions survive any worker but never touch a disk.
	SegmentPath string
	// SegmentSize is the size of the segment when this Store creates it.
	// Default 0: the shm default (64 MiB, about 40,000 sessions of 1 KiB).
	// An existing segment keeps its size; a different explicit size is an
	// error from shm.Open.
	SegmentSize int64
	// SegmentOptions are the other segment options (nil: shm defaults).
	// Its App and Size are replaced by App and SegmentSize.
	SegmentOptions *shm.Options

	// IdleTimeout ends a session nobody used for this long. Default 20
	// minutes, the usual web-server default. Every read moves the deadline
	// (see Caveats in the package documentation for how often).
	IdleTimeout time.Duration
	// Lifetime caps a session however busy it is, counted from its
	// creation; after it the session is treated as new. Default 24 hours:
	// a stolen cookie stops working within a day.
	Lifetime time.Duration

	// CookieName is the session cookie's name. Default "garden_session".
	CookieName string
	// CookieDomain is the cookie's Domain attribute. Default empty: the
	// cookie goes back only to the host that set it.
	CookieDomain string
	// CookiePath is the cookie's Path attribute. Default "/": one session
	// for the whole site.
	CookiePath string
	// Insecure drops the Secure attribute from the cookie, for plain-HTTP
	// development on loopback. Default false: the cookie is only sent over
	// HTTPS, so it cannot be read off the network.
	Insecure bool
	// SameSite is the cookie's SameSite attribute. Default Lax: the cookie
	// is not sent on cross-site subrequests and POSTs (a CSRF defence), yet
	// following a link to the site keeps the user logged in.
	SameSite http.SameSite

	// Key is the farm key, 32 bytes: every host of a farm must have the same
	// one, or cookies set by one host are new sessions on the others. At
	// most one of Key, KeyFile and KeyEnv may be set. Default (none set):
	// the workers of one host share a random key generated once and kept
	// in their segment, which is right for a single host and wrong for a
	// farm.
	Key []byte
	// KeyFile names a file holding the farm key in standard base64 on one
	// line, as `openssl rand -base64 32` prints it.
	KeyFile string
	// KeyEnv names an environment variable holding the farm key in the same
	// form as KeyFile.
	KeyEnv string

	// Freshness, if set, is called when a request's cookie says its session
	// has a newer version (want) than this host holds under key: another
	// host wrote it and replication has not brought it here yet. It should
	// return once the segment holds key at version want or later (for
	// example after asking the host's agent to fetch it), or fail; garden
	// then reads the segment again, and serves whatever it holds. It is
	// called with a context that ends after FreshnessTimeout, while the
	// session loads: it must not use the request's Session. key must not
	// be kept after the call. Default nil: serve the local copy (right for
	// a single host, where it never happens).
	Freshness func(ctx context.Context, key []byte, want shm.Version) error
	// FreshnessTimeout bounds a Freshness call. Default 100 ms: long enough
	// for a fetch from a peer on a LAN, short enough that a lagging peer
	// costs the user little.
	FreshnessTimeout time.Duration

	// OnExpire, if set, is called with the id of every session whose idle
	// deadline or lifetime passed, once farm-wide: on the host that wrote
	// the session last, one process at a time (the janitor) calls it, from
	// one goroutine. A janitor killed between
	// claiming an expiry and calling OnExpire loses that one call; no call
	// is ever made twice. It should not block for long. Default nil.
	OnExpire func(id string)
	// JanitorInterval is how often the janitor sweeps the segment for
	// expired entries. Default 1 s: OnExpire fires within about a second
	// of the deadline, for a few microseconds of work per stripe. The
	// expiries themselves are read from the change ring every 50 ms (or
	// every JanitorInterval, if shorter), and a process that is not the
	// janitor tries as often to become it.
	JanitorInterval time.Duration

	// Logger receives warnings (corrupt sessions, failed saves, janitor
	// changes). Default slog.Default().
	Logger *slog.Logger
}

const (
	defaultIdleTimeout      = 20 * time.Minute
	defaultLifetime         = 24 * time.Hour
	defaultCookieName       = "garden_session"
	defaultCookiePath       = "/"
	defaultFreshnessTimeout = 100 * time.Millisecond
	defaultJanitorInterval  = time.Second
	maxAppName              = 64
)

// withDefaults returns a copy of c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.SegmentPath == "" && c.App != "" {
		c.SegmentPath = shm.DefaultPath(c.App)
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.Lifetime == 0 {
		c.Lifetime = defaultLifetime
	}
	if c.CookieName == "" {
		c.CookieName = defaultCookieName
	}
	if c.CookiePath == "" {
		c.CookiePath = defaultCookiePath
	}
	if c.SameSite == 0 {
		c.SameSite = http.SameSiteLaxMode
	}
	if c.FreshnessTimeout == 0 {
		c.FreshnessTimeout = defaultFreshnessTimeout
	}
	if c.JanitorInterval == 0 {
		c.JanitorInterval = defaultJanitorInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// validate reports the first field of c (after withDefaults) that is out of
// range.
func (c *Config) validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("%w: %s %q: %s", ErrBadConfig, field, fmt.Sprint(v), want)
	}
	keys := 0
	for _, set := range []bool{len(c.Key) > 0, c.KeyFile != "", c.KeyEnv != ""} {
		if set {
			keys++
		}
	}
	switch {
	case c.App == "":
		return bad("App", c.App, "is required")
	case len(c.App) > maxAppName:
		return bad("App", c.App, fmt.Sprintf("must be at most %d bytes", maxAppName))
	case strings.ContainsAny(c.App, "/\x00"):
		return bad("App", c.App, "must not contain '/' or NUL (it names a file)")
	case c.SegmentSize < 0:
		return bad("SegmentSize", c.SegmentSize, "must not be negative")
	case c.IdleTimeout < time.Millisecond:
		return bad("IdleTimeout", c.IdleTimeout, "must be at least 1ms")
	case c.Lifetime < c.IdleTimeout:
		return bad("Lifetime", c.Lifetime, "must be at least IdleTimeout")
	case !validCookieName(c.CookieName):
		return bad("CookieName", c.CookieName, "must be a cookie token (letters, digits, !#$%&'*+-.^_`|~)")
	case strings.ContainsAny(c.CookieDomain, ";, \t\r\n\"\x00"):
		return bad("CookieDomain", c.CookieDomain, "must not contain ';', ',', quotes or spaces")
	case !strings.HasPrefix(c.CookiePath, "/") || strings.ContainsAny(c.CookiePath, ";\r\n\x00"):
		return bad("CookiePath", c.CookiePath, "must start with '/' and not contain ';'")
	case c.SameSite < http.SameSiteDefaultMode || c.SameSite > http.SameSiteNoneMode:
		return bad("SameSite", c.SameSite, "must be one of the http.SameSite modes")
	case c.SameSite == http.SameSiteNoneMode && c.Insecure:
		return bad("SameSite", "None", "browsers require Secure with SameSite=None; unset Insecure")
	case keys > 1:
		return bad("Key", "…", "set at most one of Key, KeyFile and KeyEnv")
	case len(c.Key) > 0 && len(c.Key) != keySize:
		return bad("Key", fmt.Sprintf("%d bytes", len(c.Key)), fmt.Sprintf("must be %d bytes", keySize))
	case c.FreshnessTimeout < 0:
		return bad("FreshnessTimeout", c.FreshnessTimeout, "must not be negative")
	case c.JanitorInterval < time.Millisecond:
		return bad("JanitorInterval", c.JanitorInterval, "must be at least 1ms")
	}
	return nil
}

// validCookieName reports whether name is an RFC 6265 token.
func validCookieName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}
