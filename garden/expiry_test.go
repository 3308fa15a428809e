package garden

// expiry_test.go checks the sliding idle deadline, the lifetime cap,
// OnExpire in one process, and read-your-writes through Freshness.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testwait"
	"github.com/gardenstate/gardenstate/shm"
)

func TestSlidingIdleDeadline(t *testing.T) {
	cfg := testConfig(t)
	// Touches when the deadline moved by over a tenth of it (1 s): the
	// immediate read below comes well within that, even on a busy machine.
	cfg.IdleTimeout = 10 * time.Second
	st := openStore(t, cfg)
	c := newClient(st, counter)
	c.do(t, "GET", "/")
	cd, _ := decodeCookie(st.mac, c.cookie)
	key := cd.id.appendKey(nil)
	e0, _ := st.seg.GetEntry(nil, key)
	touches := st.seg.Stats().Touches

	c.h = st.Middleware(http.HandlerFunc(reader))
	c.do(t, "GET", "/")
	if e, _ := st.seg.GetEntry(nil, key); !e.Expires.Equal(e0.Expires) || st.seg.Stats().Touches != touches {
		t.Fatalf("an immediate read moved the deadline from %v to %v", e0.Expires, e.Expires)
	}
	// Once the deadline would move by more than the threshold, a read moves it.
	testwait.For(t, 5*time.Second, "the touch threshold to pass", func() bool {
		return time.Now().Add(cfg.IdleTimeout).Sub(e0.Expires) > st.touchAfter+10*time.Millisecond
	})
	if got := c.do(t, "GET", "/").Body.String(); !strings.HasPrefix(got, "1 false") {
		t.Fatalf("read %q", got)
	}
	e1, _ := st.seg.GetEntry(nil, key)
	if !e1.Expires.After(e0.Expires.Add(st.touchAfter)) || e1.Version != e0.Version {
		t.Errorf("deadline %v -> %v, version %v -> %v: want a later deadline, same version", e0.Expires, e1.Expires, e0.Version, e1.Version)
	}
	if st.seg.Stats().Touches != touches+1 {
		t.Errorf("%d touches, want 1", st.seg.Stats().Touches-touches)
	}
}

func TestIdleExpiryCallsOnExpireOnce(t *testing.T) {
	cfg := testConfig(t)
	cfg.IdleTimeout = 50 * time.Millisecond
	cfg.Lifetime = time.Hour
	cfg.JanitorInterval = 5 * time.Millisecond
	var mu sync.Mutex
	calls := map[string]int{}
	cfg.OnExpire = func(id string) {
		mu.Lock()
		calls[id]++
		mu.Unlock()
	}
	st := openStore(t, cfg)
	var ids []string
	var cookies []string
	for range 5 {
		c := newClient(st, func(w http.ResponseWriter, r *http.Request) {
			s := FromContext(r.Context())
			s.Set("x", 1)
			ids = append(ids, s.ID())
		})
		c.do(t, "GET", "/")
		cookies = append(cookies, c.cookie)
	}
	testwait.For(t, 5*time.Second, "OnExpire for every session", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) == len(ids)
	})
	// Let the janitor read the ring to its end a few more times.
	last := st.seg.LastSeq()
	testwait.For(t, 5*time.Second, "the janitor to catch up", func() bool { return st.seg.Mark(expiryCursor) >= last })
	mu.Lock()
	for _, id := range ids {
		if calls[id] != 1 {
			t.Errorf("OnExpire(%s) called %d times", id, calls[id])
		}
	}
	mu.Unlock()
	for _, ck := range cookies {
		c := newClient(st, reader)
		c.cookie = ck
		if got := c.do(t, "GET", "/").Body.String(); !strings.HasPrefix(got, "0 true") {
			t.Errorf("expired session still served: %q", got)
		}
	}
}

func TestLifetimeCapsBusySession(t *testing.T) {
	cfg := testConfig(t)
	// Idle time long enough that a stalled test goroutine does not end
	// the session before its lifetime; the lifetime long enough that the
	// session must slide past its first idle deadline to reach it.
	cfg.IdleTimeout = time.Second
	cfg.Lifetime = 2 * time.Second
	cfg.JanitorInterval = 5 * time.Millisecond
	expired := make(chan string, 10)
	cfg.OnExpire = func(id string) { expired <- id }
	st := openStore(t, cfg)
	c := newClient(st, counter)
	start := time.Now()
	c.do(t, "GET", "/")
	first := c.cookie
	cd, _ := decodeCookie(st.mac, first)
	// Keep the session busy until a request finds it new.
	var n string
	testwait.For(t, 10*time.Second, "the lifetime to end", func() bool {
		n = c.do(t, "GET", "/").Body.String()
		return n == "1"
	})
	if age := time.Since(start); age < cfg.Lifetime-2*time.Millisecond { // creation is kept to the millisecond
		t.Errorf("session ended after %v, before its lifetime %v", age, cfg.Lifetime)
	}
	if c.cookie == first {
		t.Error("cookie not replaced")
	}
	select {
	case id := <-expired:
		if id != cd.id.String() {
			t.Errorf("OnExpire(%s), want %s", id, cd.id)
		}
	case <-time.After(5 * time.Second):
		t.Error("OnExpire not called for the session past its lifetime")
	}
}

// twoHosts opens two stores with the same farm key on separate segments,
// as two hosts of a farm have.
func twoHosts(t *testing.T, freshness func(ctx context.Context, key []byte, want shm.Version) error) (a, b *Store) {
	cfg := testConfig(t)
	cfg.Key = testKey
	a = openStore(t, cfg)
	cfg = testConfig(t)
	cfg.Key = testKey
	cfg.Freshness = freshness
	cfg.FreshnessTimeout = 200 * time.Millisecond
	b = openStore(t, cfg)
	return a, b
}

func TestFreshnessFetchesNewerCopy(t *testing.T) {
	var calls []shm.Version
	var gotKey string
	var a, b *Store
	a, b = twoHosts(t, func(ctx context.Context, key []byte, want shm.Version) error {
		calls = append(calls, want)
		gotKey = string(key)
		e, ok := a.seg.GetEntry(nil, key) // fetch from host a, as the agent would
		if !ok {
			return errors.New("not on host a")
		}
		_, err := b.seg.Apply(e)
		return err
	})
	// Host a writes twice; host b got the first version only.
	c := newClient(a, counter)
	c.do(t, "GET", "/")
	cd, _ := decodeCookie(a.mac, c.cookie)
	key := cd.id.appendKey(nil)
	e, _ := a.seg.GetEntry(nil, key)
	if _, err := b.seg.Apply(e); err != nil {
		t.Fatal(err)
	}
	c.do(t, "GET", "/")
	cd2, _ := decodeCookie(a.mac, c.cookie)

	c.h = b.Middleware(http.HandlerFunc(reader))
	if got := c.do(t, "GET", "/").Body.String(); !strings.HasPrefix(got, "2 false") {
		t.Errorf("host b served %q, want the newer value 2", got)
	}
	if len(calls) != 1 || calls[0] != cd2.version || gotKey != string(key) {
		t.Errorf("Freshness calls %v for %q, want one for %v", calls, gotKey, cd2.version)
	}
	// Now b is up to date: no more calls.
	c.do(t, "GET", "/")
	if len(calls) != 1 {
		t.Errorf("Freshness called %d times, want 1", len(calls))
	}
}

func TestFreshnessIsBounded(t *testing.T) {
	var called int
	a, b := twoHosts(t, func(ctx context.Context, key []byte, want shm.Version) error {
		called++
		<-ctx.Done() // a peer that never answers
		return ctx.Err()
	})
	c := newClient(a, counter)
	c.do(t, "GET", "/")
	c.h = b.Middleware(http.HandlerFunc(reader))
	start := time.Now()
	got := c.do(t, "GET", "/").Body.String()
	if d := time.Since(start); d < b.cfg.FreshnessTimeout || d > b.cfg.FreshnessTimeout+2*time.Second {
		t.Errorf("request took %v with FreshnessTimeout %v", d, b.cfg.FreshnessTimeout)
	}
	if called != 1 || !strings.HasPrefix(got, "0 true") {
		t.Errorf("Freshness called %d times; served %q, want the local (new) session", called, got)
	}
	// Without Freshness the local copy is served at once.
	b.cfg.Freshness = nil
	start = time.Now()
	c.do(t, "GET", "/")
	if d := time.Since(start); d > b.cfg.FreshnessTimeout {
		t.Errorf("request without Freshness took %v", d)
	}
}

func TestOnExpirePanicIsContained(t *testing.T) {
	cfg := testConfig(t)
	cfg.IdleTimeout = 20 * time.Millisecond
	cfg.JanitorInterval = 2 * time.Millisecond
	var mu sync.Mutex
	var n int
	cfg.OnExpire = func(id string) {
		mu.Lock()
		n++
		mu.Unlock()
		panic(fmt.Sprint("hook failed for ", id))
	}
	st := openStore(t, cfg)
	for range 2 {
		newClient(st, counter).do(t, "GET", "/")
	}
	testwait.For(t, 5*time.Second, "both expiries despite the panics", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return n == 2
	})
}

// TestOnExpireOncePerFarm: two hosts hold copies of the same sessions (as
// replication leaves them); each expires its own copy, and only the host
// that wrote a session last reports it.
func TestOnExpireOncePerFarm(t *testing.T) {
	var mu sync.Mutex
	calls := map[string][]string{} // id -> hosts that reported it
	open := func(host string) *Store {
		cfg := testConfig(t)
		cfg.Key = testKey
		// Long enough that each session is still there to be copied to
		// the other host after its request, even on a busy machine.
		cfg.IdleTimeout = 500 * time.Millisecond
		cfg.JanitorInterval = 5 * time.Millisecond
		cfg.OnExpire = func(id string) {
			mu.Lock()
			calls[id] = append(calls[id], host)
			mu.Unlock()
		}
		return openStore(t, cfg)
	}
	a, b := open("a"), open("b")
	if a.seg.NodeID() == b.seg.NodeID() {
		t.Fatal("two hosts share a node id")
	}
	writer := map[string]string{}
	for i := range 6 {
		st, other, host := a, b, "a"
		if i%2 == 1 {
			st, other, host = b, a, "b"
		}
		var id string
		c := newClient(st, func(w http.ResponseWriter, r *http.Request) {
			s := FromContext(r.Context())
			s.Set("x", 1)
			id = s.ID()
		})
		c.do(t, "GET", "/")
		writer[id] = host
		// Replicate the session to the other host, as the agent would.
		e, ok := st.seg.GetEntry(nil, []byte("s/"+id))
		if !ok {
			t.Fatalf("session %s not stored", id)
		}
		if ok, err := other.seg.Apply(e); !ok || err != nil {
			t.Fatalf("replicating %s: %v %v", id, ok, err)
		}
	}
	testwait.For(t, 5*time.Second, "OnExpire for every session", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) == len(writer)
	})
	for _, st := range []*Store{a, b} {
		last := st.seg.LastSeq()
		testwait.For(t, 5*time.Second, "the janitors to catch up", func() bool { return st.seg.Mark(expiryCursor) >= last })
	}
	mu.Lock()
	defer mu.Unlock()
	for id, host := range writer {
		if got := calls[id]; len(got) != 1 || got[0] != host {
			t.Errorf("session %s written on %s: reported by %v", id, host, got)
		}
	}
}
