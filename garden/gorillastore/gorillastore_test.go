package gorillastore_test

// gorillastore_test.go drives the Store through gorilla/sessions' own API
// with real HTTP requests: two stores on two garden stores of one segment
// stand for two worker processes.

import (
	"encoding/gob"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/gorilla/sessions"

	"github.com/gardenstate/gardenstate/garden"
	"github.com/gardenstate/gardenstate/garden/gorillastore"
	"github.com/gardenstate/gardenstate/shm"
)

type profile struct {
	Name  string
	Roles []string
}

func init() { gob.Register(profile{}) }

func openGarden(t *testing.T, path string) *garden.Store {
	t.Helper()
	gs, err := garden.Open(garden.Config{
		App: "gorilla", SegmentPath: path, SegmentSize: 4 << 20, SegmentOptions: &shm.Options{MaxValue: 64 << 10},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gs.Close() })
	return gs
}

// app is a gorilla/sessions application.
func app(t *testing.T, store sessions.Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, "app")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		s.Values["user"] = profile{Name: "alice", Roles: []string{"admin"}}
		s.Values[42] = 3.5
		if err := sessions.Save(r, w); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, "app")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		n, _ := s.Values["n"].(int) // the int comes back an int
		s.Values["n"] = n + 1
		if err := s.Save(r, w); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		p, _ := s.Values["user"].(profile)
		fmt.Fprintf(w, "%d %s %v %v", n+1, p.Name, p.Roles, s.Values[42])
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		s, _ := store.Get(r, "app")
		s.Options.MaxAge = -1
		s.Save(r, w)
	})
	return mux
}

func TestGorillaAcrossWorkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg")
	a := gorillastore.New(openGarden(t, path))
	b := gorillastore.New(openGarden(t, path))
	a.Options.Secure, b.Options.Secure = false, false // plain-HTTP test server
	srvA := httptest.NewServer(app(t, a))
	defer srvA.Close()
	srvB := httptest.NewServer(app(t, b))
	defer srvB.Close()

	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	get := func(base, path string) string {
		t.Helper()
		resp, err := cl.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	// Both servers are 127.0.0.1: the jar sends the cookie to both.
	get(srvA.URL, "/login")
	if got := get(srvB.URL, "/count"); got != "1 alice [admin] 3.5" {
		t.Errorf("worker b after login on a: %q", got)
	}
	if got := get(srvA.URL, "/count"); got != "2 alice [admin] 3.5" {
		t.Errorf("worker a: %q", got)
	}
	get(srvB.URL, "/logout")
	if got := get(srvA.URL, "/count"); got != "1  [] <nil>" {
		t.Errorf("after logout: %q", got)
	}
}

func TestGorillaBadCookies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg")
	gs := openGarden(t, path)
	store := gorillastore.New(gs)
	other := gorillastore.New(gs, []byte("another hash key, not the farm's"))
	for _, v := range []string{"", "garbage", "MTIzNDU2Nzg5MA==", "a|b|c"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: "app", Value: v})
		s, err := store.New(r, "app")
		if err != nil || !s.IsNew || len(s.Values) != 0 {
			t.Errorf("cookie %q: IsNew %v, err %v", v, s.IsNew, err)
		}
	}
	// A cookie signed with another key is a new session too.
	r := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	s, _ := other.New(r, "app")
	s.Values["x"] = 1
	if err := other.Save(r, w, s); err != nil {
		t.Fatal(err)
	}
	c := w.Result().Cookies()[0]
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 86400*30 {
		t.Errorf("cookie attributes %+v", c)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(c)
	if s, err := store.New(r, "app"); err != nil || !s.IsNew {
		t.Errorf("foreign cookie: IsNew %v, err %v", s.IsNew, err)
	}
	if s, err := other.New(r, "app"); err != nil || s.IsNew || s.Values["x"] != 1 {
		t.Errorf("own cookie: IsNew %v, values %v, err %v", s.IsNew, s.Values, err)
	}
}
