package main

// wrk_test.go checks the parser of wrk's report on a report of wrk 4.

import (
	"testing"
	"time"
)

const wrkSample = `Running 2s test @ http://127.0.0.1:36783/incr
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   626.98us    2.15ms  41.90ms   97.55%
    Req/Sec    25.63k     4.75k   50.54k    90.24%
  Latency Distribution
     50%  224.00us
     75%  563.00us
     90%    1.12ms
     99%    6.26ms
  104532 requests in 2.10s, 28.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  49792.39
Transfer/sec:     13.38MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkSample)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{requests: 104532, rate: 49792.39, p50: 224 * time.Microsecond, p99: 6260 * time.Microsecond,
		max: 41900 * time.Microsecond, non2xx: 7, sockErrs: 3, hasLatDis: true}
	if r != want {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
	if _, err := parseWrk("wrk: connection refused"); err == nil {
		t.Fatal("no error for a report without Requests/sec")
	}
	for s, d := range map[string]time.Duration{"1.50m": 90 * time.Second, "2.00s": 2 * time.Second, "812.00us": 812 * time.Microsecond} {
		if got, err := parseWrkDuration(s); err != nil || got != d {
			t.Errorf("%s: %v, %v", s, got, err)
		}
	}
}
