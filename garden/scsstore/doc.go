// Package scsstore lets applications on github.com/alexedwards/scs/v2 keep
// their sessions in a garden segment, shared by every worker process of
// the host, by changing one line:
//
//	sessionManager.Store = scsstore.New(gardenStore)
//
// scs keeps doing what it does (its own tokens, cookie, codec and idle
// timeout); the Store only holds its data: each session is one segment
// entry under "scs/<token>" that expires when scs says it does.
//
// # Basics
//
//	gs, err := garden.Open(garden.Config{App: "shop"})
//	...
//	sessionManager := scs.New()
//	sessionManager.Store = scsstore.New(gs)
//	http.ListenAndServe(addr, sessionManager.LoadAndSave(mux))
//
// # Caveats
//
// scs saves a session's data whole, so unlike garden's own sessions two
// concurrent requests of one session that change different keys can lose
// one of the changes (as with any scs store). garden's OnExpire does not
// report scs sessions.
package scsstore
