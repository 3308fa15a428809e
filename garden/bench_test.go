package garden

// bench_test.go measures what the middleware adds to a request, beside its
// baselines in one run: a handler with no sessions, a minimal in-process
// map store, and alexedwards/scs with its in-memory store. Each variant
// reads, or reads and writes, a session of about 1 KiB.
//
//	go test -run '^$' -bench Middleware -benchmem ./garden/

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/alexedwards/scs/v2"
	"github.com/vmihailenco/msgpack/v5"
)

// payload makes the session about 1 KiB.
var payload = strings.Repeat("x", 1000)

func BenchmarkMiddleware(b *testing.B) {
	plain := func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }
	b.Run("none", func(b *testing.B) { runBench(b, http.HandlerFunc(plain), nil) })

	for _, write := range []bool{false, true} {
		mode := map[bool]string{false: "read", true: "readwrite"}[write]

		b.Run("garden/"+mode, func(b *testing.B) {
			st := openStore(b, testConfig(b))
			seed := newClient(st, func(w http.ResponseWriter, r *http.Request) {
				s := FromContext(r.Context())
				s.Set("data", payload)
				s.Set("n", 1)
			})
			seed.do(b, "GET", "/")
			h := st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := FromContext(r.Context())
				var n int
				s.Get("n", &n)
				if write {
					s.Set("n", n+1)
				}
				w.Write([]byte("ok"))
			}))
			runBench(b, h, &http.Cookie{Name: st.cfg.CookieName, Value: seed.cookie})
		})

		b.Run("mapstore/"+mode, func(b *testing.B) {
			ms := &mapStore{m: map[string]map[string][]byte{}}
			ms.m["id"] = map[string][]byte{}
			ms.set("id", "data", payload)
			ms.set("id", "n", 1)
			h := ms.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				id := r.Context().Value(mapKey{}).(string)
				var n int
				ms.get(id, "n", &n)
				if write {
					ms.set(id, "n", n+1)
				}
				w.Write([]byte("ok"))
			}))
			runBench(b, h, &http.Cookie{Name: "sid", Value: "id"})
		})

		b.Run("scs-memstore/"+mode, func(b *testing.B) {
			sm := scs.New()
			var token string
			seed := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sm.Put(r.Context(), "data", payload)
				sm.Put(r.Context(), "n", 1)
			}))
			w := httptest.NewRecorder()
			seed.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
			token = w.Result().Cookies()[0].Value
			h := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := sm.GetInt(r.Context(), "n")
				if write {
					sm.Put(r.Context(), "n", n+1)
				}
				w.Write([]byte("ok"))
			}))
			runBench(b, h, &http.Cookie{Name: sm.Cookie.Name, Value: token})
		})
	}
}

func runBench(b *testing.B, h http.Handler, cookie *http.Cookie) {
	r := httptest.NewRequest("GET", "/", nil)
	if cookie != nil {
		r.AddCookie(cookie)
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// mapStore is the simplest in-process session store: a map of session ids
// to maps of msgpack values under one lock, the cookie holding the bare id.
type mapStore struct {
	mu sync.RWMutex
	m  map[string]map[string][]byte
}

type mapKey struct{}

func (ms *mapStore) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strings.CutPrefix(r.Header.Get("Cookie"), "sid=")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), mapKey{}, id)))
	})
}

func (ms *mapStore) get(id, k string, dst any) {
	ms.mu.RLock()
	raw := ms.m[id][k]
	ms.mu.RUnlock()
	msgpack.Unmarshal(raw, dst)
}

func (ms *mapStore) set(id, k string, v any) {
	raw, _ := msgpack.Marshal(v)
	ms.mu.Lock()
	ms.m[id][k] = raw
	ms.mu.Unlock()
}
