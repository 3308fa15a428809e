package scsstore_test

// scsstore_test.go drives scs.SessionManager with the Store, as an
// application would: two managers on two garden stores of one segment
// stand for two worker processes.

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/gardenstate/gardenstate/garden"
	"github.com/gardenstate/gardenstate/garden/scsstore"
	"github.com/gardenstate/gardenstate/internal/testwait"
	"github.com/gardenstate/gardenstate/shm"
)

func openGarden(t *testing.T, path string) *garden.Store {
	t.Helper()
	gs, err := garden.Open(garden.Config{
		App: "scs", SegmentPath: path, SegmentSize: 4 << 20, SegmentOptions: &shm.Options{MaxValue: 64 << 10},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gs.Close() })
	return gs
}

// worker is an application's scs setup on one garden store.
func worker(gs *garden.Store) (*scs.SessionManager, http.Handler) {
	sm := scs.New()
	sm.Store = scsstore.New(gs) // the one line an application changes
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "n", sm.GetInt(r.Context(), "n")+1)
		sm.Put(r.Context(), "name", r.URL.Query().Get("name"))
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, sm.GetString(r.Context(), "name")+" "+strings.Repeat("+", sm.GetInt(r.Context(), "n")))
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		sm.Destroy(r.Context())
	})
	return sm, sm.LoadAndSave(mux)
}

func TestSCSAcrossWorkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg")
	a, b := openGarden(t, path), openGarden(t, path)
	smA, hA := worker(a)
	_, hB := worker(b)
	var cookie *http.Cookie
	do := func(h http.Handler, target string) string {
		r := httptest.NewRequest("GET", target, nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		for _, c := range w.Result().Cookies() {
			if c.Name == smA.Cookie.Name {
				cookie = c
			}
		}
		return w.Body.String()
	}
	do(hA, "/put?name=alice")
	do(hB, "/put?name=alice")
	if got := do(hA, "/get"); got != "alice ++" {
		t.Errorf("after writes on both workers: %q", got)
	}
	all, err := scsstore.New(a).All()
	if err != nil || len(all) != 1 {
		t.Errorf("All: %d sessions, %v", len(all), err)
	}
	if _, ok := all[cookie.Value]; !ok {
		t.Errorf("All lacks the session %q", cookie.Value)
	}
	token := cookie.Value
	do(hB, "/logout")
	if _, found, _ := scsstore.New(a).Find(token); found {
		t.Error("session still found after Destroy")
	}
	if got := do(hA, "/get"); got != " " {
		t.Errorf("after logout: %q", got)
	}
}

func TestStoreContract(t *testing.T) {
	s := scsstore.New(openGarden(t, filepath.Join(t.TempDir(), "seg")))
	if _, found, err := s.Find("nope"); found || err != nil {
		t.Errorf("Find of an unknown token: %v %v", found, err)
	}
	if _, found, err := s.Find(strings.Repeat("x", 1000)); found || err != nil {
		t.Errorf("Find of a huge token: %v %v", found, err)
	}
	if err := s.Delete("nope"); err != nil {
		t.Errorf("Delete of an unknown token: %v", err)
	}
	if err := s.Commit("t", []byte("data"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if b, found, err := s.Find("t"); !found || err != nil || string(b) != "data" {
		t.Errorf("Find: %q %v %v", b, found, err)
	}
	// An expiry in the past deletes.
	s.Commit("t", []byte("data"), time.Now().Add(-time.Second))
	if _, found, _ := s.Find("t"); found {
		t.Error("committed with a past expiry, still found")
	}
	// Entries expire when scs said.
	s.Commit("short", []byte("x"), time.Now().Add(30*time.Millisecond))
	testwait.For(t, 5*time.Second, "the entry to expire", func() bool {
		_, found, _ := s.Find("short")
		return !found
	})
}
