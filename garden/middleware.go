// middleware.go is the net/http middleware: it gives each request a lazily
// loaded Session and saves it when the response starts or the handler
// returns, setting the cookie when it changed.

package garden

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
)

// Middleware returns a handler that gives every request a Session
// (FromContext) and saves it: when the handler first writes its response
// (so that the cookie, which carries the session's version, can still be
// set), or when the handler returns if it wrote nothing. Changes made
// after the response started are saved when the handler returns, without
// updating the cookie. A handler that panics before writing saves nothing;
// the panic goes on up the stack.
//
// A request that never touches its session costs no segment access and
// sets no cookie.
func (st *Store) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &Session{st: st}
		s.changes = s.changesBuf[:0]
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, s))
		s.req = r
		rw := &s.rw
		rw.ResponseWriter, rw.s = w, s
		returned := false
		defer func() {
			if !returned {
				s.end(false)
			}
		}()
		next.ServeHTTP(rw, r)
		returned = true
		if !rw.started {
			rw.start()
		}
		s.end(true)
	})
}

// startResponse saves s and adds its Set-Cookie header, if any, to h. It is
// called once, just before the response headers are written.
func (s *Session) startResponse(h http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded || s.done {
		return
	}
	if s.dirty() {
		if err := s.save(); err != nil {
			s.st.log.Warn("garden: session not saved", "err", err)
		}
	}
	switch {
	case s.setCookie:
		maxAge := int(s.st.ttlCookie(s.created).Seconds())
		h.Add("Set-Cookie", s.st.setCookie(&cookieData{id: s.id, version: s.version}, maxAge))
	case s.expireCookie:
		h.Add("Set-Cookie", s.st.setCookie(nil, 0))
	}
}

// end finishes s when the handler is done: saves what changed after the
// response started (if the handler returned normally), and releases the
// session's buffers.
func (s *Session) end(save bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if save && s.loaded && !s.done && s.dirty() {
		if err := s.save(); err != nil {
			s.st.log.Warn("garden: session not saved", "err", err)
		}
	}
	s.done = true
	if s.scr != nil {
		s.st.putScratch(s.scr)
		s.scr = nil
	}
	s.base, s.changes = nil, nil
}

// responseWriter saves the session just before the response starts.
type responseWriter struct {
	http.ResponseWriter
	s       *Session
	started bool
}

func (w *responseWriter) start() {
	w.started = true
	w.s.startResponse(w.ResponseWriter.Header())
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.started && (code < 100 || code >= 200) { // 1xx responses are not the response
		w.start()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.started {
		w.start()
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps the underlying writer's sendfile path.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.started {
		w.start()
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() {
	if !w.started {
		w.start()
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker; the session is saved first.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.started {
		w.start()
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
