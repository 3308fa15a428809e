package garden

// session_test.go drives the middleware with httptest: cookies, loading,
// saving, Destroy, RenewID, panics and bad cookies.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/shm"
)

// counter increments "n" and writes the new value.
func counter(w http.ResponseWriter, r *http.Request) {
	s := FromContext(r.Context())
	var n int
	if _, err := s.Get("n", &n); err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	if err := s.Set("n", n+1); err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	fmt.Fprint(w, n+1)
}

// reader writes the value of "n" (0 if absent) and whether the session is
// new.
func reader(w http.ResponseWriter, r *http.Request) {
	s := FromContext(r.Context())
	var n int
	s.Get("n", &n)
	fmt.Fprintf(w, "%d %v %s", n, s.IsNew(), s.ID())
}

func TestNewSessionSetsCookie(t *testing.T) {
	st := openStore(t, testConfig(t))
	var id string
	c := newClient(st, func(w http.ResponseWriter, r *http.Request) {
		id = FromContext(r.Context()).ID()
		counter(w, r)
	})
	w := c.do(t, "GET", "/")
	sc := setCookies(w)
	if len(sc) != 1 {
		t.Fatalf("Set-Cookie = %q, want one", sc)
	}
	for _, attr := range []string{"garden_session=", "; Path=/", "; HttpOnly", "; Secure", "; SameSite=Lax", "; Max-Age=86"} {
		if !strings.Contains(sc[0], attr) {
			t.Errorf("Set-Cookie %q lacks %q", sc[0], attr)
		}
	}
	cd, err := decodeCookie(st.mac, c.cookie)
	if err != nil {
		t.Fatal(err)
	}
	if cd.id.String() != id || len(id) != 22 {
		t.Errorf("cookie id %q, session id %q", cd.id.String(), id)
	}
	e, ok := st.seg.GetEntry(nil, []byte("s/"+id))
	if !ok || e.Version != cd.version {
		t.Errorf("stored version %v (found %v), cookie version %v", e.Version, ok, cd.version)
	}
	if w := c.do(t, "GET", "/"); w.Body.String() != "2" {
		t.Errorf("second request: %q, want 2", w.Body.String())
	}
}

func TestReadSetsNoCookieAndWritesNothing(t *testing.T) {
	cfg := testConfig(t)
	cfg.Key = testKey // the janitor reads a host key now and then
	st := openStore(t, cfg)
	c := newClient(st, counter)
	c.do(t, "GET", "/")
	sets := st.seg.Stats().Sets
	c.h = st.Middleware(http.HandlerFunc(reader))
	w := c.do(t, "GET", "/")
	if got := w.Body.String(); !strings.HasPrefix(got, "1 false ") {
		t.Errorf("read %q", got)
	}
	if sc := setCookies(w); len(sc) != 0 {
		t.Errorf("read-only request set cookies %q", sc)
	}
	if got := st.seg.Stats().Sets; got != sets {
		t.Errorf("read-only request stored %d times", got-sets)
	}
	// A handler that never touches its session costs nothing.
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hi")) }))
	gets := st.seg.Stats().Gets
	if w := c.do(t, "GET", "/"); len(setCookies(w)) != 0 || st.seg.Stats().Gets != gets {
		t.Errorf("untouched session: cookies %q, %d segment reads", setCookies(w), st.seg.Stats().Gets-gets)
	}
	// Setting a key to the value it has is no change either.
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).Set("n", 1)
	}))
	if w := c.do(t, "GET", "/"); len(setCookies(w)) != 0 || st.seg.Stats().Sets != sets {
		t.Errorf("same-value Set: cookies %q, %d stores", setCookies(w), st.seg.Stats().Sets-sets)
	}
}

func TestWriteUpdatesCookieVersion(t *testing.T) {
	st := openStore(t, testConfig(t))
	c := newClient(st, counter)
	c.do(t, "GET", "/")
	first, _ := decodeCookie(st.mac, c.cookie)
	w := c.do(t, "GET", "/")
	if len(setCookies(w)) != 1 {
		t.Fatalf("write did not set the cookie")
	}
	second, _ := decodeCookie(st.mac, c.cookie)
	if second.id != first.id || !first.version.Less(second.version) {
		t.Errorf("cookie went from %v to %v", first, second)
	}
}

func TestNewSessionWithoutValuesIsNotStored(t *testing.T) {
	st := openStore(t, testConfig(t))
	c := newClient(st, reader)
	w := c.do(t, "GET", "/")
	if len(setCookies(w)) != 0 || st.seg.Stats().Sets != 1 { // the one store is the host key
		t.Errorf("empty new session: cookies %q, %d stores", setCookies(w), st.seg.Stats().Sets)
	}
}

func TestInsecureAndCookieOptions(t *testing.T) {
	cfg := testConfig(t)
	cfg.Insecure = true
	cfg.CookieName = "sid"
	cfg.CookiePath = "/app"
	cfg.CookieDomain = "example.com"
	cfg.SameSite = http.SameSiteStrictMode
	st := openStore(t, cfg)
	w := newClient(st, counter).do(t, "GET", "/app/")
	sc := setCookies(w)
	if len(sc) != 1 || strings.Contains(sc[0], "Secure") {
		t.Fatalf("Set-Cookie %q", sc)
	}
	for _, attr := range []string{"sid=", "; Path=/app", "; Domain=example.com", "; SameSite=Strict", "; HttpOnly"} {
		if !strings.Contains(sc[0], attr) {
			t.Errorf("Set-Cookie %q lacks %q", sc[0], attr)
		}
	}
	// The header parses as a cookie.
	if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].Name != "sid" || !cs[0].HttpOnly {
		t.Errorf("parsed %v", cs)
	}
}

func TestBadCookiesGiveNewSession(t *testing.T) {
	st := openStore(t, testConfig(t))
	c := newClient(st, counter)
	c.do(t, "GET", "/")
	c.do(t, "GET", "/")
	good := c.cookie

	other := testConfig(t)
	other.Key = testKey
	foreign := newClient(openStore(t, other), counter)
	foreign.do(t, "GET", "/")

	flip := []byte(good)
	flip[30] ^= 1
	if flip[30] == '-' || flip[30] == '_' {
		flip[30] = 'A'
	}
	bad := []string{
		"", "x", "garbage!!", good[:len(good)-1], good + "A", string(flip), foreign.cookie,
		strings.Repeat("A", cookieLen), strings.Repeat("ÿ", 5000), good[:10] + "\x00" + good[11:],
	}
	for _, v := range bad {
		c.cookie = v
		w := c.do(t, "GET", "/")
		if w.Code != 200 || w.Body.String() != "1" {
			t.Errorf("cookie %.40q: status %d body %q, want a new session", v, w.Code, w.Body.String())
		}
	}
	// Beside a bad cookie of the same name, the good one is found.
	c.h = st.Middleware(http.HandlerFunc(reader))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Add("Cookie", "garden_session=forged; other=x; garden_session="+good)
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	if !strings.HasPrefix(w.Body.String(), "2 false") {
		t.Errorf("good cookie after a bad one: %q", w.Body.String())
	}
	c.h = st.Middleware(http.HandlerFunc(counter))
	// The good cookie still works, and was not changed by the others.
	c.cookie = good
	if w := c.do(t, "GET", "/"); w.Body.String() != "3" {
		t.Errorf("good cookie: %q, want 3", w.Body.String())
	}
}

func TestDestroy(t *testing.T) {
	st := openStore(t, testConfig(t))
	c := newClient(st, counter)
	c.do(t, "GET", "/")
	old := c.cookie
	cd, _ := decodeCookie(st.mac, old)
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).Destroy()
	}))
	w := c.do(t, "GET", "/")
	sc := setCookies(w)
	if len(sc) != 1 || !strings.Contains(sc[0], "Max-Age=0") || c.cookie != "" {
		t.Fatalf("Destroy: Set-Cookie %q", sc)
	}
	if e, ok := st.seg.GetEntry(nil, cd.id.appendKey(nil)); !ok || !e.Deleted {
		t.Errorf("destroyed session: entry %+v found %v, want a tombstone", e, ok)
	}
	c.cookie = old
	c.h = st.Middleware(http.HandlerFunc(reader))
	if got := c.do(t, "GET", "/").Body.String(); !strings.HasPrefix(got, "0 true ") {
		t.Errorf("old cookie after Destroy: %q", got)
	}

	// Values set after Destroy start a new session with a new id.
	c.h = st.Middleware(http.HandlerFunc(counter))
	c.cookie = ""
	c.do(t, "GET", "/")
	before, _ := decodeCookie(st.mac, c.cookie)
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		s.Destroy()
		s.Set("flash", "bye")
	}))
	w = c.do(t, "GET", "/")
	after, err := decodeCookie(st.mac, c.cookie)
	if err != nil || after.id == before.id || len(setCookies(w)) != 1 {
		t.Fatalf("Destroy then Set: cookie %q, %v", setCookies(w), err)
	}
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		fmt.Fprint(w, s.Keys())
	}))
	if got := c.do(t, "GET", "/").Body.String(); got != "[flash]" {
		t.Errorf("after Destroy then Set: keys %s", got)
	}
}

func TestRenewID(t *testing.T) {
	st := openStore(t, testConfig(t))
	c := newClient(st, counter)
	c.do(t, "GET", "/")
	c.do(t, "GET", "/")
	old := c.cookie
	oldcd, _ := decodeCookie(st.mac, old)
	var ids [2]string
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		ids[0] = s.ID()
		if err := s.RenewID(); err != nil {
			t.Error(err)
		}
		ids[1] = s.ID()
		s.Set("user", "alice")
	}))
	w := c.do(t, "GET", "/")
	if ids[0] == ids[1] || ids[0] != oldcd.id.String() || len(setCookies(w)) != 1 {
		t.Fatalf("RenewID: ids %q, Set-Cookie %q", ids, setCookies(w))
	}
	newcd, _ := decodeCookie(st.mac, c.cookie)
	if newcd.id.String() != ids[1] {
		t.Errorf("cookie id %s, want %s", newcd.id, ids[1])
	}
	if e, ok := st.seg.GetEntry(nil, oldcd.id.appendKey(nil)); !ok || !e.Deleted {
		t.Errorf("old id: entry found %v deleted %v, want a tombstone", ok, e.Deleted)
	}
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		var n int
		var user string
		s.Get("n", &n)
		s.Get("user", &user)
		fmt.Fprintf(w, "%d %s %v", n, user, s.IsNew())
	}))
	if got := c.do(t, "GET", "/").Body.String(); got != "2 alice false" {
		t.Errorf("renewed session: %q", got)
	}
	c.cookie = old
	if got := c.do(t, "GET", "/").Body.String(); got != "0  true" {
		t.Errorf("old cookie after RenewID: %q", got)
	}
}

func TestPanicSavesNothing(t *testing.T) {
	st := openStore(t, testConfig(t))
	c := newClient(st, counter)
	c.do(t, "GET", "/")
	sets := st.seg.Stats().Sets
	inner := st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).Set("n", 100)
		panic("boom")
	}))
	var recovered any
	c.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { recovered = recover() }()
		inner.ServeHTTP(w, r)
	})
	w := c.do(t, "GET", "/")
	if recovered != "boom" {
		t.Errorf("recovered %v, want the handler's panic", recovered)
	}
	if len(setCookies(w)) != 0 || st.seg.Stats().Sets != sets {
		t.Errorf("panicking handler: cookies %q, %d stores", setCookies(w), st.seg.Stats().Sets-sets)
	}
	c.h = st.Middleware(http.HandlerFunc(reader))
	if got := c.do(t, "GET", "/").Body.String(); !strings.HasPrefix(got, "1 false") {
		t.Errorf("after panic: %q", got)
	}
}

func TestChangeAfterResponseStartedIsSaved(t *testing.T) {
	st := openStore(t, testConfig(t))
	c := newClient(st, counter)
	c.do(t, "GET", "/")
	before := c.cookie
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		s.Set("early", 1)
		w.WriteHeader(202)
		w.Write([]byte("body"))
		s.Set("late", 2)
	}))
	w := c.do(t, "GET", "/")
	if w.Code != 202 || len(setCookies(w)) != 1 {
		t.Fatalf("status %d, Set-Cookie %q", w.Code, setCookies(w))
	}
	if c.cookie == before {
		t.Errorf("early change did not update the cookie")
	}
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, FromContext(r.Context()).Keys())
	}))
	if got := c.do(t, "GET", "/").Body.String(); got != "[early late n]" {
		t.Errorf("keys %s", got)
	}
}

func TestValues(t *testing.T) {
	st := openStore(t, testConfig(t))
	type cart struct {
		Items []string
		Total float64
	}
	c := newClient(st, func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		if err := s.Set("cart", cart{Items: []string{"a", "b"}, Total: 2.5}); err != nil {
			t.Error(err)
		}
		if err := s.Set("bad", make(chan int)); err == nil {
			t.Error("Set of a channel: no error")
		}
		s.Set("gone", true)
		s.Delete("gone")
		s.Delete("never")
	})
	c.do(t, "GET", "/")
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		var got cart
		if ok, err := s.Get("cart", &got); !ok || err != nil || !slices.Equal(got.Items, []string{"a", "b"}) || got.Total != 2.5 {
			t.Errorf("Get cart: %+v %v %v", got, ok, err)
		}
		var m map[string]any
		if ok, err := s.Get("cart", &m); !ok || err != nil || m["Total"] != 2.5 {
			t.Errorf("Get cart as map: %v %v %v", m, ok, err)
		}
		var n int
		if ok, err := s.Get("cart", &n); !ok || err == nil {
			t.Errorf("Get cart into int: ok %v err %v, want a decode error", ok, err)
		}
		if ok, err := s.Get("gone", &n); ok || err != nil {
			t.Errorf("Get deleted key: %v %v", ok, err)
		}
		if ok, _ := s.Get("bad", &n); ok {
			t.Error("failed Set stored something")
		}
		if k := s.Keys(); !slices.Equal(k, []string{"cart"}) {
			t.Errorf("Keys %q", k)
		}
	}))
	c.do(t, "GET", "/")
}

func TestSessionUsedAfterRequest(t *testing.T) {
	st := openStore(t, testConfig(t))
	var kept *Session
	c := newClient(st, func(w http.ResponseWriter, r *http.Request) {
		kept = FromContext(r.Context())
		kept.Set("a", 1)
	})
	c.do(t, "GET", "/")
	if err := kept.Set("a", 2); !errors.Is(err, ErrRequestDone) {
		t.Errorf("Set after the request: %v", err)
	}
	if _, err := kept.Get("a", new(int)); !errors.Is(err, ErrRequestDone) {
		t.Errorf("Get after the request: %v", err)
	}
	if FromContext(httptest.NewRequest("GET", "/", nil).Context()) != nil {
		t.Error("FromContext without middleware is not nil")
	}
}

func TestConcurrentRequestsKeepEachOthersKeys(t *testing.T) {
	st := openStore(t, testConfig(t))
	c := newClient(st, counter)
	c.do(t, "GET", "/")
	const workers, rounds = 8, 50
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprint("k", i)
			h := st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := FromContext(r.Context())
				var n int
				s.Get(k, &n)
				s.Set(k, n+1)
				s.Set("last", k)
			}))
			cl := &client{name: c.name, cookie: c.cookie, h: h}
			for range rounds {
				cl.do(t, "GET", "/")
			}
		}()
	}
	wg.Wait()
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		for i := range workers {
			var n int
			s.Get(fmt.Sprint("k", i), &n)
			if n != rounds {
				t.Errorf("k%d = %d, want %d", i, n, rounds)
			}
		}
		var last string
		if ok, _ := s.Get("last", &last); !ok || !strings.HasPrefix(last, "k") {
			t.Errorf("last = %q", last)
		}
	}))
	c.do(t, "GET", "/")
}

func TestHostKeySharedBySegment(t *testing.T) {
	cfg := testConfig(t)
	a := openStore(t, cfg)
	b := openStore(t, cfg)
	if string(a.farm) != string(b.farm) || !a.hostKey {
		t.Fatal("two stores on one segment have different host keys")
	}
	c := newClient(a, counter)
	c.do(t, "GET", "/")
	c.h = b.Middleware(http.HandlerFunc(counter))
	if got := c.do(t, "GET", "/").Body.String(); got != "2" {
		t.Errorf("second worker: %q, want 2", got)
	}
	// A store with a configured key does not accept the host key's cookies.
	cfg.Key = testKey
	k := openStore(t, cfg)
	c.h = k.Middleware(http.HandlerFunc(counter))
	if got := c.do(t, "GET", "/").Body.String(); got != "1" {
		t.Errorf("store with another key: %q, want a new session", got)
	}
}

func TestStoreClosed(t *testing.T) {
	st, err := Open(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(st, counter)
	c.do(t, "GET", "/")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st.Close() // twice is fine
	w := c.do(t, "GET", "/")
	if w.Code != 200 {
		t.Errorf("request after Close: %d", w.Code)
	}
}

// TestVersionIsShmVersion pins the cookie's version to the stored entry's.
func TestVersionIsShmVersion(t *testing.T) {
	st := openStore(t, testConfig(t))
	c := newClient(st, counter)
	for range 3 {
		c.do(t, "GET", "/")
		cd, _ := decodeCookie(st.mac, c.cookie)
		e, _ := st.seg.GetEntry(nil, cd.id.appendKey(nil))
		if e.Version != cd.version || e.Version == (shm.Version{}) {
			t.Fatalf("cookie version %v, stored %v", cd.version, e.Version)
		}
	}
}

func TestSaveAfterConcurrentDestroy(t *testing.T) {
	st := openStore(t, testConfig(t))
	c := newClient(st, counter)
	c.do(t, "GET", "/")
	orig := c.cookie
	loaded, destroyed := make(chan struct{}), make(chan struct{})
	var saveErr error
	a := &client{name: c.name, cookie: c.cookie, h: st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		var n int
		s.Get("n", &n)
		close(loaded)
		<-destroyed
		s.Set("cart", "after logout")
		saveErr = s.Save()
	}))}
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- a.do(t, "GET", "/") }()
	<-loaded
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).Destroy()
	}))
	c.do(t, "GET", "/")
	close(destroyed)
	w := <-done
	if !errors.Is(saveErr, ErrSessionGone) {
		t.Errorf("Save after a concurrent Destroy: %v", saveErr)
	}
	if sc := setCookies(w); len(sc) != 1 || !strings.Contains(sc[0], "Max-Age=0") {
		t.Errorf("Set-Cookie %q, want the cookie removed", sc)
	}
	c.cookie = a.cookie
	if c.cookie != "" {
		t.Errorf("cookie kept after ErrSessionGone")
	}
	c.cookie = orig
	c.h = st.Middleware(http.HandlerFunc(reader))
	if got := c.do(t, "GET", "/").Body.String(); !strings.HasPrefix(got, "0 true") {
		t.Errorf("the destroyed session came back: %q", got)
	}
}

// TestWaitReplicated: the wait ends when the agent acknowledges the
// session's write, and with the context otherwise.
func TestWaitReplicated(t *testing.T) {
	st := openStore(t, testConfig(t))
	var waitErr error
	c := newClient(st, func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		s.Set("paid", true)
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Millisecond)
		defer cancel()
		if err := s.WaitReplicated(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("without an agent: %v, want the deadline", err)
		}
		// An agent: acknowledge whatever has been written, until done.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
					st.seg.SetAcked(st.seg.LastSeq())
				}
			}
		}()
		s.Set("paid", "twice")
		ctx, cancel = context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		waitErr = s.WaitReplicated(ctx)
	})
	c.do(t, "GET", "/")
	if waitErr != nil {
		t.Fatalf("with the write acknowledged: %v", waitErr)
	}
}
