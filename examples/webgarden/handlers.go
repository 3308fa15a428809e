// handlers.go holds webgarden's pages.

package main

import (
	"encoding/json"
	"html/template"
	"net/http"
	"os"
	"strconv"

	"github.com/gardenstate/gardenstate/garden"
)

var pid = os.Getpid()

// newHandler returns webgarden's pages behind the session middleware, each
// response saying which worker served it.
func newHandler(store *garden.Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", home)
	mux.HandleFunc("POST /note", note)
	mux.HandleFunc("GET /api/session", getSession)
	mux.HandleFunc("POST /api/session", postSession)
	mux.HandleFunc("POST /api/incr", incr)
	sessions := store.Middleware(mux)
	worker := strconv.Itoa(pid)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Garden-Worker", worker)
		sessions.ServeHTTP(w, r)
	})
}

var page = template.Must(template.New("home").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>webgarden</title></head>
<body>
<h1>webgarden</h1>
<p>You have visited {{.Visits}} time{{if ne .Visits 1}}s{{end}}. This page was served by worker <b>{{.Worker}}</b>.</p>
{{if .Note}}<p>Your note: <q>{{.Note}}</q></p>{{end}}
<form method="post" action="/note">
<input name="note" value="{{.Note}}" placeholder="a note for your session">
<button>Save</button>
</form>
<p><small>Session {{.ID}}</small></p>
</body></html>
`))

func home(w http.ResponseWriter, r *http.Request) {
	s := garden.FromContext(r.Context())
	var visits int
	var text string
	s.Get("visits", &visits)
	s.Get("note", &text)
	visits++
	if err := s.Set("visits", visits); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	page.Execute(w, map[string]any{"Visits": visits, "Worker": pid, "Note": text, "ID": s.ID()})
}

func note(w http.ResponseWriter, r *http.Request) {
	if err := garden.FromContext(r.Context()).Set("note", r.FormValue("note")); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func getSession(w http.ResponseWriter, r *http.Request) {
	s := garden.FromContext(r.Context())
	values := map[string]any{}
	for _, k := range s.Keys() {
		var v any
		if _, err := s.Get(k, &v); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		values[k] = v
	}
	writeJSON(w, map[string]any{"id": s.ID(), "worker": pid, "values": values})
}

func postSession(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s := garden.FromContext(r.Context())
	for k, vs := range r.PostForm {
		if err := s.Set(k, vs[0]); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	getSession(w, r)
}

func incr(w http.ResponseWriter, r *http.Request) {
	k := r.URL.Query().Get("k")
	if k == "" {
		http.Error(w, "missing k", http.StatusBadRequest)
		return
	}
	s := garden.FromContext(r.Context())
	var n int64
	if _, err := s.Get(k, &n); err != nil {
		http.Error(w, k+" is not an integer", http.StatusConflict)
		return
	}
	n++
	if err := s.Set(k, n); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, map[string]any{"value": n, "worker": pid})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
