package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/shm"
)

// TestFarmFreshnessAsksTheAgent: the fetch names the app, key and version,
// lets the agent wait as long as the request may (so garden's
// FreshnessTimeout, not the agent's default, bounds it), and only a 200
// counts as fresh.
func TestFarmFreshnessAsksTheAgent(t *testing.T) {
	var got url.Values
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/fetch" {
			http.NotFound(w, r)
			return
		}
		got = r.URL.Query()
		w.WriteHeader(status)
	}))
	defer srv.Close()
	fresh := farmFreshness(strings.TrimPrefix(srv.URL, "http://"), "shop")
	want := shm.Version{Time: 1234567, Node: 3}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := fresh(ctx, []byte("s/\xff"), want); err != nil {
		t.Fatalf("200 from the agent: %v", err)
	}
	if got.Get("app") != "shop" || got.Get("key") != "cy__" || got.Get("version") != "1234567.3" {
		t.Fatalf("query %v", got)
	}
	// What is left of 2 s: more than the agent's own 100 ms unless this
	// test stalled for nearly 2 s.
	if d, err := time.ParseDuration(got.Get("timeout")); err != nil || d <= 100*time.Millisecond || d > 2*time.Second {
		t.Fatalf("timeout %q (%v): want what is left of the request's 2s", got.Get("timeout"), err)
	}

	if err := fresh(context.Background(), []byte("k"), want); err != nil || got.Has("timeout") {
		t.Fatalf("no deadline: err %v, timeout %q; want the agent's default", err, got.Get("timeout"))
	}
	long, cancelLong := context.WithTimeout(context.Background(), time.Minute)
	defer cancelLong()
	if err := fresh(long, []byte("k"), want); err != nil || got.Get("timeout") != "10s" {
		t.Fatalf("a minute left: err %v, timeout %q; want the agent's 10s cap", err, got.Get("timeout"))
	}

	status = http.StatusGatewayTimeout
	if err := fresh(context.Background(), []byte("k"), want); err == nil {
		t.Fatal("504 from the agent counted as fresh")
	}
}
