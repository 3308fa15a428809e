package garden

// multiproc_test.go runs workers as real processes on one segment: the
// key merge of concurrent saves, and the janitor's exactly-once OnExpire
// with a takeover after the janitor is killed.

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testwait"
	"github.com/gardenstate/gardenstate/shm"
)

func init() {
	childRoles["merger"] = childMerger
	childRoles["janitor"] = childJanitor
}

// childConfig is the config a child uses: the parent's segment.
func childConfig() Config {
	return Config{
		App:            "test",
		SegmentPath:    os.Getenv("GARDEN_PATH"),
		SegmentSize:    8 << 20,
		SegmentOptions: &shm.Options{MaxValue: 64 << 10},
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// childMerger increments its own key ROUNDS times in the session of
// COOKIE, and sets "last" each time, waiting for "go" on stdin first.
func childMerger() int {
	st, err := Open(childConfig())
	if err != nil {
		return childFail("open: %v", err)
	}
	defer st.Close()
	me := os.Getenv("GARDEN_ME")
	rounds, _ := strconv.Atoi(os.Getenv("GARDEN_ROUNDS"))
	h := st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		var n int
		if _, err := s.Get(me, &n); err != nil {
			w.WriteHeader(500)
			return
		}
		s.Set(me, n+1)
		s.Set("last", me)
	}))
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	for range rounds {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", "garden_session="+os.Getenv("GARDEN_COOKIE"))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			return childFail("status %d", w.Code)
		}
	}
	fmt.Println("done", saveConflicts.Load())
	return 0
}

func TestMultiProcessMerge(t *testing.T) {
	cfg := testConfig(t)
	st := openStore(t, cfg)
	c := newClient(st, counter)
	c.do(t, "GET", "/")
	const procs, rounds = 4, 1000
	var kids []*child
	for i := range procs {
		kids = append(kids, startChild(t, "merger", "GARDEN_PATH="+cfg.SegmentPath, "GARDEN_COOKIE="+c.cookie,
			fmt.Sprint("GARDEN_ME=p", i), fmt.Sprint("GARDEN_ROUNDS=", rounds)))
	}
	for _, k := range kids {
		k.Expect(t, "ready", 10*time.Second)
	}
	sets := st.seg.Stats().Sets
	for _, k := range kids {
		k.Say("go")
	}
	var conflicts int
	for _, k := range kids {
		var n int
		fmt.Sscanf(k.Expect(t, "done", 30*time.Second), "done %d", &n)
		conflicts += n
		if code := k.Wait(t, 10*time.Second); code != 0 {
			t.Fatalf("child exit %d: %s", code, k.Stderr())
		}
	}
	if stores := st.seg.Stats().Sets - sets; stores != procs*rounds {
		t.Errorf("%d stores for %d saves", stores, procs*rounds)
	}
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		for i := range procs {
			var n int
			s.Get(fmt.Sprint("p", i), &n)
			if n != rounds {
				t.Errorf("p%d = %d, want %d", i, n, rounds)
			}
		}
		var n int
		s.Get("n", &n)
		var last string
		s.Get("last", &last)
		if n != 1 || !strings.HasPrefix(last, "p") {
			t.Errorf("n = %d, last = %q", n, last)
		}
	}))
	c.do(t, "GET", "/")
	t.Logf("%d saves by %d processes, %d retried after a conflict", procs*rounds, procs, conflicts)
}

// childJanitor runs a store whose OnExpire prints "expired <id> <pid>".
func childJanitor() int {
	cfg := childConfig()
	cfg.JanitorInterval = 5 * time.Millisecond
	out := make(chan string, 1024)
	cfg.OnExpire = func(id string) { out <- id }
	st, err := Open(cfg)
	if err != nil {
		return childFail("open: %v", err)
	}
	defer st.Close()
	fmt.Println("ready")
	go func() {
		io.Copy(io.Discard, os.Stdin) // the parent closing stdin ends the child
		close(out)
	}()
	for id := range out {
		fmt.Printf("expired %s %d\n", id, os.Getpid())
	}
	return 0
}

func TestJanitorExactlyOnceAcrossProcesses(t *testing.T) {
	cfg := testConfig(t)
	seg, err := shm.Open(cfg.SegmentPath, &shm.Options{App: cfg.App, Size: cfg.SegmentSize, MaxValue: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	// Merge every child's lines into one channel.
	lines := make(chan string, 1024)
	var kids []*child
	for range 3 {
		k := startChild(t, "janitor", "GARDEN_PATH="+cfg.SegmentPath)
		k.Expect(t, "ready", 10*time.Second)
		kids = append(kids, k)
		go func() {
			for l := range k.Lines {
				lines <- l
			}
		}()
	}
	// expire stores n sessions that expire at once, and returns their ids.
	expire := func(n int) map[string]bool {
		ids := map[string]bool{}
		for range n {
			id := newID()
			if err := seg.Set(id.appendKey(nil), appendRecord(nil, time.Now().UnixMilli(), nil), 20*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			ids[id.String()] = true
		}
		return ids
	}
	// collect reads expiry lines until every id in want was reported, then
	// until the janitor has read the ring to its end, and checks each was
	// reported once. It returns the pids that reported.
	collect := func(want map[string]bool) map[int]bool {
		t.Helper()
		got := map[string]int{}
		pids := map[int]bool{}
		read := func(l string) {
			f := strings.Fields(l)
			if len(f) != 3 || f[0] != "expired" {
				t.Fatalf("child said %q", l)
			}
			got[f[1]]++
			pid, _ := strconv.Atoi(f[2])
			pids[pid] = true
		}
		deadline := time.After(10 * time.Second)
		for len(got) < len(want) {
			select {
			case l := <-lines:
				read(l)
			case <-deadline:
				t.Fatalf("%d of %d expiries reported", len(got), len(want))
			}
		}
		last := seg.LastSeq()
		testwait.For(t, 10*time.Second, "the janitor to reach the end of the ring", func() bool { return seg.Mark(expiryCursor) >= last })
		for drained := false; !drained; {
			select {
			case l := <-lines:
				read(l)
			default:
				drained = true
			}
		}
		for id, n := range got {
			if !want[id] || n != 1 {
				t.Errorf("OnExpire(%s) called %d times (expected id: %v)", id, n, want[id])
			}
		}
		return pids
	}

	pids := collect(expire(50))
	if len(pids) != 1 {
		t.Fatalf("expiries reported by %d processes, want one janitor", len(pids))
	}
	var janitor int
	for pid := range pids {
		janitor = pid
	}
	// Kill the janitor: another process takes over.
	for _, k := range kids {
		if k.Cmd.Process.Pid == janitor {
			k.Kill()
		}
	}
	pids = collect(expire(50))
	if len(pids) != 1 || pids[janitor] {
		t.Errorf("after killing janitor %d, expiries reported by %v", janitor, pids)
	}
}
