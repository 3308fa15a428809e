package garden

// helpers_test.go holds what the tests share: stores on temporary
// segments, a client that keeps cookies, polling against a deadline, and
// child processes (TestMain re-enters the test binary in a role named by an
// environment variable, since the race detector cannot see memory mapped
// from a file).

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/gardenstate/gardenstate/internal/childproc"
	"github.com/gardenstate/gardenstate/shm"
)

var childRoles = map[string]func() int{}

func TestMain(m *testing.M) {
	childproc.Main(childRoles)
	os.Exit(m.Run())
}

// testKey is a fixed farm key for tests that need two stores to agree.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// testConfig returns a config on a fresh segment path in a temporary
// directory, with a small segment.
func testConfig(t testing.TB) Config {
	return Config{
		App:            "test",
		SegmentPath:    filepath.Join(t.TempDir(), "seg"),
		SegmentSize:    8 << 20,
		SegmentOptions: &shm.Options{MaxValue: 64 << 10},
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// openStore opens a store with cfg and closes it at the end of the test.
func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	st, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// client sends requests to a handler and keeps the session cookie as a
// browser would.
type client struct {
	h      http.Handler
	name   string
	cookie string // value; "" when none
}

func newClient(st *Store, h http.HandlerFunc) *client {
	return &client{h: st.Middleware(h), name: st.cfg.CookieName}
}

// do sends a request and applies the response's Set-Cookie.
func (c *client) do(t testing.TB, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if c.cookie != "" {
		r.Header.Set("Cookie", c.name+"="+c.cookie)
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	for _, ck := range w.Result().Cookies() {
		if ck.Name != c.name {
			continue
		}
		if ck.MaxAge < 0 {
			c.cookie = ""
		} else {
			c.cookie = ck.Value
		}
	}
	return w
}

// setCookies returns the Set-Cookie headers of a response.
func setCookies(w *httptest.ResponseRecorder) []string { return w.Result().Header.Values("Set-Cookie") }

type child = childproc.Child

// startChild runs this test binary in role with the extra environment.
func startChild(t testing.TB, role string, env ...string) *child {
	t.Helper()
	return childproc.Start(t, role, env...)
}

var childFail = childproc.Fail
