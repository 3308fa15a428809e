package garden_test

// example_test.go holds the package's runnable examples.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/gardenstate/gardenstate/garden"
)

// A visit counter: the first response sets the cookie, the second request
// sends it back and sees the count the first one saved.
func ExampleStore_Middleware() {
	dir, _ := os.MkdirTemp("", "garden-example")
	defer os.RemoveAll(dir)
	store, err := garden.Open(garden.Config{App: "example", SegmentPath: filepath.Join(dir, "seg"), SegmentSize: 4 << 20})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	h := store.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := garden.FromContext(r.Context())
		var visits int
		s.Get("visits", &visits)
		s.Set("visits", visits+1)
		fmt.Fprintf(w, "visit %d", visits+1)
	}))

	var cookie *http.Cookie
	for range 2 {
		r := httptest.NewRequest("GET", "/", nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		cookie = w.Result().Cookies()[0]
		fmt.Println(w.Body.String(), cookie.Name, cookie.HttpOnly, cookie.Secure, cookie.SameSite == http.SameSiteLaxMode)
	}
	// Output:
	// visit 1 garden_session true true true
	// visit 2 garden_session true true true
}
