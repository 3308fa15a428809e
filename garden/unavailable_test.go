package garden

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testhooks"
	"github.com/gardenstate/gardenstate/shm"
)

func init() { childRoles["holder"] = childHolder }

// childHolder rewrites the entry GARDEN_KEY with its own bytes and stops in
// the middle of the write, holding its stripe's lock, until told to go on.
func childHolder() int {
	seg, err := shm.Open(os.Getenv("GARDEN_PATH"), nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	defer seg.Close()
	key := []byte(os.Getenv("GARDEN_KEY"))
	e, ok := seg.GetEntry(nil, key)
	if !ok {
		return childFail("no entry %s", key)
	}
	in := bufio.NewReader(os.Stdin)
	testhooks.Shm = func(p string) {
		if p == "advanced" {
			fmt.Println("holding")
			in.ReadString('\n')
		}
	}
	if _, err := seg.Put(key, e.Value, shm.PutOptions{TTL: time.Hour}); err != nil {
		return childFail("put: %v", err)
	}
	testhooks.Shm = nil
	fmt.Println("done")
	return 0
}

// TestSessionUnavailableWhileHeld: a session whose stripe a stopped process
// holds is reported unavailable, nothing is saved and the cookie is left
// alone; once the process goes on, the session is back intact.
func TestSessionUnavailableWhileHeld(t *testing.T) {
	cfg := testConfig(t)
	cfg.SegmentOptions = &shm.Options{MaxValue: 64 << 10, LockTimeout: 100 * time.Millisecond}
	st := openStore(t, cfg)
	var id string
	c := newClient(st, func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		s.Set("n", 41)
		id = s.ID()
	})
	c.do(t, "GET", "/")
	h := startChild(t, "holder", "GARDEN_PATH="+cfg.SegmentPath, "GARDEN_KEY=s/"+id)
	h.Expect(t, "holding", 30*time.Second)

	var getErr, setErr error
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		var n int
		_, getErr = s.Get("n", &n)
		setErr = s.Set("n", 99)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	w := c.do(t, "GET", "/")
	if !errors.Is(getErr, ErrUnavailable) || !errors.Is(setErr, ErrUnavailable) {
		t.Fatalf("Get/Set on a held session: %v, %v; want ErrUnavailable", getErr, setErr)
	}
	if sc := setCookies(w); len(sc) != 0 {
		t.Fatalf("a held session replaced the cookie: %v", sc)
	}

	h.Say("go")
	h.Expect(t, "done", 30*time.Second)
	var n int
	var found bool
	c.h = st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		found, getErr = s.Get("n", &n)
	}))
	c.do(t, "GET", "/")
	if getErr != nil || !found || n != 41 {
		t.Fatalf("after the holder went on: n=%d found=%v err=%v; want 41", n, found, getErr)
	}
	if strings.Contains(strings.Join(setCookies(w), ""), "Max-Age=0") {
		t.Fatal("the cookie was expired")
	}
}
