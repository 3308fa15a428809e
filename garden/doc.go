// Package garden keeps web sessions in a segment (package shm) shared by
// every worker process of a host, so any worker can serve any request of a
// session, and a worker that restarts loses nothing.
//
// # Basics
//
// Open a Store once per process and wrap the handlers with its Middleware;
// handlers reach their session with FromContext:
//
//	store, err := garden.Open(garden.Config{App: "shop"})
//	if err != nil { ... }
//	defer store.Close()
//	http.ListenAndServe(addr, store.Middleware(mux))
//
//	func cart(w http.ResponseWriter, r *http.Request) {
//		s := garden.FromContext(r.Context())
//		var items []string
//		s.Get("cart", &items)
//		s.Set("cart", append(items, r.FormValue("item")))
//		...
//	}
//
// A session is one segment entry under "s/<id>": a msgpack map of the
// application's keys and its creation time. It is loaded on first use in a
// request and saved once, when the response starts (or the handler
// returns), only if something changed. A save writes only the keys the
// request changed, onto the latest stored version with a compare-and-swap,
// so two concurrent requests of one session that change different keys
// both keep their change; for the same key the last writer wins.
//
// The cookie holds the session id (128 bits from crypto/rand), the version
// of the session as last saved, and an HMAC-SHA256 under a key derived
// from the farm key and App. It is HttpOnly, Secure (unless
// Config.Insecure) and SameSite=Lax by default, and is only sent when it
// changes: a new or renewed session, a save, or Destroy. A forged,
// truncated or malformed cookie gives a new session, never an error.
//
// Sessions end after IdleTimeout without a read or write, or Lifetime
// after they were created, whichever comes first. RenewID gives a session
// a new id (call it at login); Destroy ends it. OnExpire reports expired
// sessions, once each.
//
// Without a configured farm key, the workers of one host share a random
// key generated once and kept in their segment under "garden/farm-key": right
// for one host, but every host of a farm needs the same key (Config.Key,
// KeyFile or KeyEnv), or a cookie set by one is a new session on another.
//
// The cookie's version gives read-your-writes across hosts: when a request
// arrives at a host whose copy is older than its cookie says (replication
// has not caught up), the Store calls Config.Freshness, which waits for
// or fetches the newer copy, for at most FreshnessTimeout.
//
// Apps on another session library can keep it and use the segment through
// the adapters garden/scsstore (alexedwards/scs) and garden/gorillastore
// (gorilla/sessions). garden/prefork runs N worker processes of one binary
// on one port.
//
// # Caveats
//
// The cookie is set when the response starts; a handler that changes the
// session after writing its first byte still has the change saved, but
// the cookie keeps the older version (and a session created that late
// gets no cookie at all). A handler that panics after its response started
// has already saved.
//
// A read slides the idle deadline only when it moved by more than a tenth
// of IdleTimeout (at most a minute), so a session may end up to that much
// earlier than IdleTimeout after its last read.
//
// OnExpire runs in whichever process holds the janitor lock (an flock on
// "<segment path>.janitor", released by the kernel when the process dies),
// in one goroutine; it is called once per expiry, and a janitor killed
// between claiming an expiry and calling OnExpire loses that call rather
// than making it twice. In a farm (gardend replicating the segment to other
// hosts) every host expires its own copy, and only the host whose node made
// the session's last write calls OnExpire: once farm-wide, on the host that
// served the user last. If that host is down at the deadline, no host calls
// it. Sessions ended by Destroy or RenewID are not reported. A session's
// deadline never goes past its Lifetime, so it expires (and is reported)
// then at the latest.
//
// A session larger than the segment's MaxValue (default 1 MiB) cannot be
// saved; the failure is logged and the request's changes are lost.
//
// Values are msgpack: a value read back decodes into what dst points to,
// and into an any it becomes the msgpack type (an int stored may come back
// as int8), as with any msgpack round trip.
//
// A Session belongs to its request; using it after the request ended
// returns ErrRequestDone.
package garden
